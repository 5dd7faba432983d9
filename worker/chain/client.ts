/**
 * Chain access for nodes, the CLI and the demo: contract handles from Hardhat's build artifacts,
 * deployment, and a transaction sender that signs once, re-broadcasts the same signed bytes on
 * transient RPC errors (so a transaction is never sent twice by accident), and decodes reverts into
 * the contracts' custom error names.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import {
  BaseWallet,
  Contract,
  type ContractRunner,
  ContractFactory,
  formatUnits,
  id,
  Interface,
  JsonRpcProvider,
  keccak256,
  type Signer,
  type TransactionRequest,
  type TransactionReceipt,
  type ParamType,
  type Wallet,
  ZeroHash,
} from "ethers";
import { phaseName } from "./protocol.ts";
import { queryEvents } from "./events.ts";
import { DEPLOY_PLAN, resolveArg, type Arg, type DeployParameters, type Role } from "./deployment.ts";

const ROOT = resolve(import.meta.dirname, "../..");

export interface Deployment {
  chainId: number;
  token: string;
  stakeManager: string;
  coordinator: string;
  /**
   * The block of the deployment's first transaction: event queries start here rather than at block 0,
   * which a hosted endpoint would refuse or take millions of blocks to answer (worker/chain/events.ts).
   * Deployment files written before it was recorded lack it: queries then start at 0.
   */
  deployBlock?: number;
}

type ContractName = "StakeToken" | "StakeManager" | "TrainingCoordinator" | "CoordinatorExtension";
const ARTIFACT_PATHS: Record<ContractName, string> = {
  StakeToken: "StakeToken.sol/StakeToken.json",
  StakeManager: "StakeManager.sol/StakeManager.json",
  TrainingCoordinator: "TrainingCoordinator.sol/TrainingCoordinator.json",
  CoordinatorExtension: "coordinator/CoordinatorExtension.sol/CoordinatorExtension.json",
};

export function loadArtifact(name: ContractName): { abi: unknown[]; bytecode: string } {
  const file = resolve(ROOT, "artifacts/contracts", ARTIFACT_PATHS[name]);
  if (!existsSync(file)) buildContracts();
  if (!existsSync(file)) throw new Error(`${file} is missing after \`npx hardhat build\` (is contracts/ complete?)`);
  const a = JSON.parse(readFileSync(file, "utf8"));
  return { abi: a.abi, bytecode: a.bytecode };
}

/**
 * Compiles the contracts (`hardhat build` in the repository root) because an artifact is missing: the
 * first use of a fresh clone. Once per process, with one line on stderr (stdout may be a command's JSON);
 * the compiler's own output goes to stderr too.
 */
export function buildContracts(root = ROOT): void {
  if (buildTried.has(root)) return;
  buildTried.add(root);
  const hardhat = resolve(root, "node_modules/.bin/hardhat");
  process.stderr.write("fedstake: compiling the contracts (first use: artifacts/ has no build of them yet) …\n");
  if (!existsSync(hardhat)) throw new Error(`cannot compile the contracts: ${hardhat} is missing (run \`npm ci\` in ${root})`);
  // hardhat's `#!/usr/bin/env node` must run on this Node, not the machine's.
  const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ""}` };
  const r = spawnSync(hardhat, ["build", "--no-tests", "--quiet"], { cwd: root, env, stdio: ["ignore", 2, 2] });
  if (r.error || r.status !== 0) {
    throw new Error(`compiling the contracts failed (\`npx hardhat build\` in ${root}: ${r.error ? r.error.message : `exit status ${r.status ?? r.signal}`})`);
  }
}
const buildTried = new Set<string>();

export interface Protocol {
  token: Contract;
  stake: Contract;
  coord: Contract;
  /** Where the protocol's events begin: the deployment's block (0 if the deployment file predates it). */
  fromBlock: number;
}

/**
 * Refuses an endpoint whose chain is not the deployment's. The same deployer and nonces give the same
 * addresses on every chain, so a deployment file pointed at another chain's endpoint would find
 * contracts there (or none) and sign and send to them. Checked before anything is signed or read.
 */
export async function assertChainId(provider: JsonRpcProvider, dep: Deployment, rpc: string): Promise<void> {
  const chainId = Number(
    await provider.send("eth_chainId", []).catch((e: Error) => {
      throw new ChainError(`the chain at ${rpc} does not answer: ${e.message.split("\n")[0]}`);
    }),
  );
  if (chainId !== dep.chainId) throw new ChainError(`the chain at ${rpc} has chain id ${chainId}, the deployment is for chain ${dep.chainId}: wrong --rpc or wrong deployment file`);
}

/**
 * The coordinator's whole ABI: `TrainingCoordinator` delegates every function it does not implement to its
 * `CoordinatorExtension` (same storage, same address), so callers see the union of both.
 */
export function coordinatorAbi(artifacts: { abi: unknown[] }[] = [loadArtifact("TrainingCoordinator"), loadArtifact("CoordinatorExtension")]): unknown[] {
  const seen = new Set<string>();
  const out: unknown[] = [];
  for (const a of artifacts) {
    for (const f of a.abi as { type: string; name?: string; inputs?: { type: string }[] }[]) {
      const key = `${f.type}:${f.name ?? ""}(${(f.inputs ?? []).map((i) => i.type).join(",")})`;
      if (f.type === "constructor" || f.type === "fallback" || seen.has(key)) continue;
      seen.add(key);
      out.push(f);
    }
  }
  return out;
}

export function attach(dep: Deployment, runner: ContractRunner): Protocol {
  return {
    token: new Contract(dep.token, loadArtifact("StakeToken").abi as never, runner),
    stake: new Contract(dep.stakeManager, loadArtifact("StakeManager").abi as never, runner),
    coord: new Contract(dep.coordinator, coordinatorAbi() as never, runner),
    fromBlock: dep.deployBlock ?? 0,
  };
}

/**
 * Every custom error of the contracts, for decoding reverts; built on first use (so that a build made
 * by that first use is seen). The coordinator's come first: where two contracts declare an error of the
 * same name and types (InsufficientStake), one selector decodes both, and only the coordinator's is
 * ever raised.
 */
let errorsInterface: Interface | undefined;
/** Each error parameter's Solidity type as the ABI names it (`enum ITrainingCoordinator.Phase`), by `Error.param`. */
const internalTypes = new Map<string, string>();
function errorInterface(): Interface {
  if (errorsInterface) return errorsInterface;
  const abis = (["TrainingCoordinator", "CoordinatorExtension", "StakeManager", "StakeToken"] as const).flatMap((n) => {
    const a = loadArtifactSafe(n);
    return a ? [{ abi: a.abi.filter((f) => (f as { type: string }).type === "error") }] : [];
  });
  for (const f of abis.flatMap((a) => a.abi) as { name: string; inputs: { name: string; internalType?: string }[] }[]) {
    for (const i of f.inputs) if (i.internalType) internalTypes.set(`${f.name}.${i.name}`, i.internalType);
  }
  errorsInterface = new Interface(coordinatorAbi(abis) as never);
  return errorsInterface;
}

function loadArtifactSafe(n: ContractName) {
  try {
    return loadArtifact(n);
  } catch {
    return undefined;
  }
}

export class ChainError extends Error {
  override readonly name = "ChainError";
  /** The custom error's name, when the revert carried one. */
  readonly errorName?: string;
  /** The custom error's arguments as decoded (bigints, addresses, …), when the revert carried one. */
  readonly args?: readonly unknown[];
  constructor(message: string, errorName?: string, args?: readonly unknown[]) {
    super(message);
    this.errorName = errorName;
    this.args = args;
  }
}

/** A decoded custom error: its name, its arguments as decoded, and the text a person reads. */
export interface DecodedRevert {
  name: string;
  args: unknown[];
  /** `WrongPhase(expected: VoteCommit, now: Reveal)`, `StillUnbonding(until: 2026-12-01T08:02:53Z)`. */
  text: string;
}

/** `2026-12-01T08:02:53Z`: a chain time (Unix seconds) as an ISO date, to the second. */
const isoSeconds = (s: bigint) => new Date(Number(s) * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
/** Base units as tokens (18 decimals), exact: `2.5`, `0.000000000000000001`. */
const tokens = (x: bigint) => formatUnits(x, 18);

/** The roles a revert may name (AccessControlUnauthorizedAccount), by their hash. */
const ROLES = new Map([[ZeroHash, "DEFAULT_ADMIN_ROLE"], [id("MINTER_ROLE"), "MINTER_ROLE"]]);

/** Names shown instead of the ABI's, where the ABI's would mislead (WrongPhase's `actual` is the phase the job is in now). */
const LABELS: Record<string, string> = { "WrongPhase.actual": "now", "StillUnbonding.releaseTime": "until" };
/** Parameters that hold token amounts (base units, shown as tokens). */
const AMOUNTS = new Set([
  "InsufficientStake.required",
  "InsufficientStake.actual",
  "InsufficientStake.available",
  "InsufficientStake.requested",
  "InsufficientFreeStake.free",
  "InsufficientFreeStake.required",
  "UnsupportedToken.received",
  "UnsupportedToken.expected",
  "ERC20InsufficientBalance.balance",
  "ERC20InsufficientBalance.needed",
  "ERC20InsufficientAllowance.allowance",
  "ERC20InsufficientAllowance.needed",
]);
/** Parameters that hold chain times (Unix seconds, shown as ISO dates). */
const TIMES = /^(until|deadline|releaseTime|timepoint|currentTime|at|time|expiry|[a-z]+(Time|At|Until|Deadline))$/;
const AMOUNT_NAME = /^(amount|stake|have|need|balance|allowance|[a-z]+(Amount|Stake))$/;

/** One argument of a custom error as a person reads it. */
function argText(error: string, param: ParamType, v: unknown): string {
  const key = `${error}.${param.name}`;
  if (typeof v === "bigint") {
    if (/^enum .*\.Phase$/.test(internalTypes.get(key) ?? "")) return phaseName(v);
    if (AMOUNTS.has(key) || AMOUNT_NAME.test(param.name)) return tokens(v);
    if (TIMES.test(param.name)) return isoSeconds(v);
    if (/bitmap/i.test(param.name)) return `0x${v.toString(16)}`;
    return v.toString();
  }
  if (param.type === "bytes32" && typeof v === "string" && /role/i.test(param.name)) return ROLES.get(v) ?? v;
  if (param.type === "string") return JSON.stringify(v);
  return String(v);
}

/** The custom error in a revert, with its arguments named (and `text` as a person reads it), or undefined. */
export function decodeRevertDetail(e: unknown): DecodedRevert | undefined {
  const data = findRevertData(e);
  if (!data) return undefined;
  try {
    const parsed = errorInterface().parseError(data);
    if (!parsed) return undefined;
    const args = [...parsed.args];
    const inputs = parsed.fragment.inputs;
    const parts = inputs.map((p, i) => {
      const label = LABELS[`${parsed.name}.${p.name}`] ?? p.name;
      const value = argText(parsed.name, p, args[i]);
      return label ? `${label}: ${value}` : value;
    });
    return { name: parsed.name, args, text: `${parsed.name}(${parts.join(", ")})` };
  } catch {
    return undefined;
  }
}

/** `WrongPhase(expected: VoteCommit, now: Reveal)` from revert data, or undefined. */
export function decodeRevert(e: unknown): string | undefined {
  return decodeRevertDetail(e)?.text;
}

function findRevertData(e: unknown): string | undefined {
  let cur: unknown = e;
  for (let depth = 0; depth < 6 && cur && typeof cur === "object"; depth++) {
    const o = cur as Record<string, unknown>;
    if (typeof o.data === "string" && o.data.startsWith("0x") && o.data.length >= 10) return o.data;
    cur = o.error ?? o.info ?? o.cause;
  }
  return undefined;
}

/** The node already has a transaction at this nonce (this one, mined or pending, or another). */
const NONCE_USED = /nonce too low|nonce has already been used|NONCE_EXPIRED|replacement transaction underpriced|replacement fee too low/i;
/** Of those, the answers that say the transaction holding the nonce is still pending (geth, Anvil, Nethermind). */
const NONCE_PENDING = /replacement transaction underpriced|replacement fee too low/i;
const TRANSIENT = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|socket hang up|aborted|network|timeout|fetch failed|503|502|429|nonce too high|header not found/i;

/**
 * What an RPC error says, without the request ethers appends to its message: a raw transaction's hex can
 * contain "503" or "429", and a permanent error then looked transient (or an unknown one, by luck, did).
 */
function rpcErrorText(e: unknown): string {
  const o = (e ?? {}) as { shortMessage?: string; message?: string; code?: unknown; error?: { message?: string }; info?: { error?: { message?: string } } };
  return [o.shortMessage ?? o.message ?? String(e), o.code, o.error?.message, o.info?.error?.message].filter((x) => x != null).join(" | ");
}

/**
 * Polls for a transaction's receipt until `timeoutMs`. A failed poll (the endpoint down or lagging) is retried,
 * not thrown: the transaction is out, and a caller told "failed" would send the call again.
 */
async function waitMined(provider: JsonRpcProvider, hash: string, timeoutMs: number, log?: (m: string) => void): Promise<TransactionReceipt | null> {
  const by = Date.now() + timeoutMs;
  let failing = false;
  for (;;) {
    try {
      const receipt = await provider.getTransactionReceipt(hash);
      if (receipt) return receipt;
      failing = false;
    } catch (e) {
      if (!failing) log?.(`waiting for ${hash}: ${rpcErrorText(e).slice(0, 80)}; polling on`);
      failing = true;
    }
    if (Date.now() >= by) return null;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * Gas added to every estimate: the same call costs more when it lands in a later block than the one it
 * was estimated on (a stake checkpoint written fresh for a new timestamp instead of updated in place
 * costs ~20k more). Unused gas is not charged.
 */
const GAS_HEADROOM = 60_000n;
/**
 * Further gas for calls whose cost depends on who lands first: an attestation estimated before another
 * validator's is mined may be the one that crosses the threshold and opens the next round.
 */
const RACE_GAS_HEADROOM: Record<string, bigint> = { attestModel: 200_000n, finalizeRound: 100_000n };

/** The next nonce each local account will use: the RPC's "pending" count can lag a just-mined tx. */
const nextNonces = new WeakMap<object, Map<string, number>>();
/**
 * Signing is one at a time per account and provider: two sends racing between reading the nonce and
 * recording the next one would sign the same nonce (the same bytes, for the same call). Broadcasting is
 * not serialised: a later nonce broadcast before an earlier one is refused as "nonce too high" by an
 * automining chain, and is re-broadcast (the same bytes) after a backoff, like a transient RPC error.
 */
const signing = new WeakMap<object, Map<string, Promise<unknown>>>();
function oneAtATime<T>(provider: object, account: string, f: () => Promise<T>): Promise<T> {
  const queue = signing.get(provider) ?? new Map<string, Promise<unknown>>();
  signing.set(provider, queue);
  const next = (queue.get(account) ?? Promise.resolve()).then(f, f);
  queue.set(account, next.catch(() => undefined));
  return next;
}

/**
 * Sends a contract call as one signed transaction: estimates gas (a revert here throws a ChainError
 * with the custom error's name, and nothing is sent), signs once with an explicit nonce, and on
 * transient RPC errors re-broadcasts the same bytes with backoff until it is mined.
 */
export async function sendTx(
  wallet: Wallet,
  contract: Contract,
  method: string,
  args: unknown[],
  opts: { retries?: number; log?: (m: string) => void } = {},
): Promise<TransactionReceipt> {
  let request;
  try {
    request = await contract.getFunction(method).populateTransaction(...args);
  } catch (e) {
    throw new ChainError(`${method}: bad arguments: ${(e as Error).message}`);
  }
  return sendRequest(wallet, request, method, opts);
}

/** Sends `value` wei to `to` the way sendTx sends calls (one signature, explicit nonce, re-broadcast on transient errors). */
export function sendValue(wallet: BaseWallet, to: string, value: bigint, opts: { retries?: number; log?: (m: string) => void } = {}): Promise<TransactionReceipt> {
  return sendRequest(wallet, { to, value }, "transfer", opts);
}

async function sendRequest(
  wallet: BaseWallet,
  request: TransactionRequest,
  label: string,
  opts: { retries?: number; log?: (m: string) => void } = {},
): Promise<TransactionReceipt> {
  const provider = wallet.provider as JsonRpcProvider;
  const retries = opts.retries ?? 6;
  // Per provider: the same account on another chain (tests run several in one process) has other nonces.
  const nextNonce = nextNonces.get(provider) ?? new Map<string, number>();
  nextNonces.set(provider, nextNonce);
  try {
    request.gasLimit = ((await wallet.estimateGas({ ...request, from: wallet.address })) * 12n) / 10n + GAS_HEADROOM + (RACE_GAS_HEADROOM[label] ?? 0n);
  } catch (e) {
    const d = decodeRevertDetail(e);
    if (d) throw new ChainError(`${label} would revert: ${d.text}`, d.name, d.args);
    throw e;
  }
  // Signs at the next nonce. A signed transaction whose nonce is already used can never be mined, so
  // re-signing it at a fresh nonce (after checking it was not itself mined) cannot send it twice.
  const sign = (tag: "pending" | "latest") =>
    oneAtATime(provider, wallet.address, async () => {
      const nonce = Math.max(await wallet.getNonce(tag), nextNonce.get(wallet.address) ?? 0);
      const signed = await wallet.signTransaction(await wallet.populateTransaction({ ...request, nonce }));
      nextNonce.set(wallet.address, nonce + 1);
      return { signed, hash: keccak256(signed), nonce };
    });
  let { signed, hash, nonce } = await sign("pending");
  for (let attempt = 0; ; attempt++) {
    try {
      await provider.broadcastTransaction(signed);
    } catch (e) {
      const msg = rpcErrorText(e);
      const d = decodeRevertDetail(e);
      if (d) throw new ChainError(`${label} reverted: ${d.text}`, d.name, d.args);
      const wait = 250 * 2 ** attempt;
      if (NONCE_USED.test(msg) && attempt < retries) {
        // The nonce is held. Signing the call again is safe only once the nonce is mined by another
        // transaction (then this one can never be). Held by a pending one — which may be this very one: an
        // endpoint that took it and answered with an error, a lost answer re-sent, a pool that has it but
        // not yet a block — the same bytes are sent again, which can never apply the call twice.
        // The mined count is read before the receipt: this one mined in between is found by its receipt. A
        // failed read proves nothing (a receipt query answered with an error is not "no receipt").
        let mined = -1;
        let own: TransactionReceipt | null | undefined;
        try {
          mined = await wallet.getNonce("latest");
          own = await provider.getTransactionReceipt(hash);
        } catch {
          own = undefined;
        }
        if (own === null && mined > nonce) {
          nextNonce.delete(wallet.address);
          opts.log?.(`${label}: nonce ${nonce} was used by another transaction, signing again at a fresh nonce`);
          ({ signed, hash, nonce } = await sign("latest"));
          continue;
        }
        if (!own) {
          opts.log?.(`${label}: nonce ${nonce} held by a pending transaction${NONCE_PENDING.test(msg) ? "" : " (or the endpoint lags)"}, sending the same bytes again in ${wait} ms`);
          await new Promise((r) => setTimeout(r, wait));
          continue;
        }
      } else if (!/already known|already imported|known transaction/i.test(msg) && !NONCE_USED.test(msg)) {
        // "already known": this very transaction is in; anything else transient: re-broadcast the same bytes.
        if (TRANSIENT.test(msg) && attempt < retries) {
          opts.log?.(`${label}: transient RPC error (${msg.slice(0, 80)}), retrying in ${wait} ms`);
          await new Promise((r) => setTimeout(r, wait));
          continue;
        }
        // An error answer does not prove the chain refused it (a proxy or a load balancer answering for
        // it): a transaction the chain knows by its hash is waited for, not reported as failed.
        if (!(await provider.getTransaction(hash).catch(() => null))) {
          nextNonce.delete(wallet.address);
          throw e;
        }
        opts.log?.(`${label}: the broadcast was answered with an error (${msg.slice(0, 80)}) but the chain has ${hash}: waiting for it`);
      }
    }
    const receipt = await waitMined(provider, hash, 120_000, (m) => opts.log?.(`${label}: ${m}`));
    if (!receipt) throw new ChainError(`${label}: ${hash} not mined within 120 s`);
    if (receipt.status !== 1) {
      // A mined revert carries no reason in its receipt: it passed estimation, so what made it fail landed
      // in the same block before it (another validator's attestation, a racing finalize). Replaying the
      // call on that block's state names the error.
      const replay = await provider.call({ ...request, from: wallet.address, blockTag: receipt.blockNumber }).then(
        () => ({ ok: true as const }),
        (e: unknown) => ({ ok: false as const, decoded: decodeRevertDetail(e), message: (e as { shortMessage?: string }).shortMessage ?? (e as Error).message }),
      );
      const why = replay.ok
        ? " (replayed on that block's state it succeeds: it failed on what came before it in the block, or on gas)"
        : replay.decoded
          ? `: ${replay.decoded.text}`
          : ` (replayed, it fails without a decodable reason: ${String(replay.message).slice(0, 120)})`;
      throw new ChainError(`${label} reverted in block ${receipt.blockNumber}${why}`, replay.ok ? undefined : replay.decoded?.name, replay.ok ? undefined : replay.decoded?.args);
    }
    return receipt;
  }
}

/** A round's revealed updates, from the coordinator's UpdateRevealed events, in reveal order. */
export async function revealedUpdates(coord: Contract, jobId: bigint, round: bigint, fromBlock: number) {
  const events = await queryEvents(coord, coord.filters.UpdateRevealed!(jobId, round), fromBlock);
  return events
    .map((e) => ({
      index: Number(e.args.index),
      worker: e.args.worker as string,
      digest: e.args.cidDigest as string,
      codec: Number(e.args.cidCodec),
      numSamples: BigInt(e.args.numSamples),
    }))
    .sort((a, b) => a.index - b.index);
}

/**
 * Runs the deployment plan (deployment.ts): token, stake manager and coordinator, and the coordinator
 * made the stake manager's only locker and slasher (set once; no key can change it). What `params` leaves
 * out takes the plan's default; the guardian's is the deployer.
 *
 * A wallet's transactions go through sendRequest (signed once, re-broadcast on transient RPC errors). A
 * signer whose key is held by the node (Hardhat's test accounts) cannot sign offline: the node signs and
 * sends for it.
 */
export async function deployProtocol(deployer: Signer, params: Partial<DeployParameters> = {}): Promise<Deployment> {
  const send = async (request: TransactionRequest, label: string) => {
    if (deployer instanceof BaseWallet) return sendRequest(deployer, request, label);
    const receipt = await (await deployer.sendTransaction(request)).wait();
    if (!receipt) throw new ChainError(`${label}: not mined`);
    return receipt;
  };
  const from = await deployer.getAddress();
  const addresses = {} as Record<Role, string>;
  const artifacts = {} as Record<Role, ContractName>;
  let deployBlock: number | undefined;
  const value = (arg: Arg) =>
    resolveArg<unknown, string>(arg, { deployer: from, contract: (role) => addresses[role], param: (name, fallback) => params[name] ?? fallback });
  for (const step of DEPLOY_PLAN) {
    if ("deploy" in step) {
      const a = loadArtifact(step.artifact);
      const tx = await new ContractFactory(a.abi as never, a.bytecode).getDeployTransaction(...step.args.map(value));
      const receipt = await send(tx, `deploy ${step.artifact}`);
      deployBlock ??= receipt.blockNumber;
      if (!receipt.contractAddress) throw new ChainError(`deploy ${step.artifact}: no contract address in the receipt`);
      addresses[step.deploy] = receipt.contractAddress;
      artifacts[step.deploy] = step.artifact;
    } else {
      const data = new Interface(loadArtifact(artifacts[step.call]).abi as never).encodeFunctionData(step.method, step.args.map(value));
      await send({ to: addresses[step.call], data }, step.method);
    }
  }
  return { chainId: Number((await deployer.provider!.getNetwork()).chainId), ...addresses, deployBlock };
}
