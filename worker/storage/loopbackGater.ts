/**
 * A libp2p connection gater that refuses every address outside loopback (127.0.0.0/8, ::1), inbound
 * and outbound, unless the operator lists extra allowed networks. Our nodes never reach the public
 * network by accident.
 */
import type { ConnectionGater, MultiaddrConnection } from "@libp2p/interface";
import type { Multiaddr } from "@multiformats/multiaddr";

export interface GaterOptions {
  /** Extra IPv4 prefixes allowed (e.g. "10.0.0."), for operators running across a private network. */
  allowPrefixes?: string[];
  /** Allow any address (operators who know what they are doing). */
  allowAll?: boolean;
}

const hostOf = (ma: Multiaddr): string | undefined => {
  for (const c of ma.getComponents()) {
    if (c.name === "ip4" || c.name === "ip6") return c.value;
    if (c.name === "dns" || c.name === "dns4" || c.name === "dns6" || c.name === "dnsaddr") return undefined; // no DNS
  }
  return undefined;
};

export function isLoopback(host: string): boolean {
  return host.startsWith("127.") || host === "::1";
}

export function allowedAddress(ma: Multiaddr, opts: GaterOptions = {}): boolean {
  if (opts.allowAll) return true;
  const host = hostOf(ma);
  if (host === undefined) return false;
  return isLoopback(host) || (opts.allowPrefixes ?? []).some((p) => host.startsWith(p));
}

export function loopbackGater(opts: GaterOptions = {}): ConnectionGater {
  const deny = (ma: Multiaddr) => !allowedAddress(ma, opts);
  return {
    denyDialMultiaddr: (ma: Multiaddr) => deny(ma),
    denyInboundConnection: (conn: MultiaddrConnection) => deny(conn.remoteAddr),
    denyOutboundConnection: (_peer, conn: MultiaddrConnection) => deny(conn.remoteAddr),
    filterMultiaddrForPeer: (_peer, ma: Multiaddr) => !deny(ma),
  };
}
