/** The local chain (`chain start`), deployment and the stake itself: deploy, mint, stake, unstake, withdraw. */
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import type { Command } from "commander";
import { ZeroAddress } from "ethers";
import { deployProtocol, sendTx } from "../../worker/chain/client.ts";
import { CHILD_ENV } from "../../worker/chain/devnet.ts";
import { loadWallet } from "../../worker/chain/keys.ts";
import { inHome } from "../../worker/node/home.ts";
import { address, chainOptions, fmt, isoTime, jsonOption, option, printJson, providerOf, signer, tokenAmount, UsageError, wholeNumber, type ChainOpts } from "./common.ts";

const ROOT = resolve(import.meta.dirname, "../..");

/** RPC methods whose log a person follows: transactions sent to the chain (with their hash, gas and block). */
const TX_METHODS = new Set(["eth_sendTransaction", "eth_sendRawTransaction"]);
/** ANSI colour codes, as hardhat writes them. */
const ANSI = /\x1b\[[0-9;]*m/g;
/** A method line of hardhat node's log: `eth_call`, possibly coloured, possibly with a repeat count. */
const METHOD_LINE = /^([a-z0-9]+_[A-Za-z0-9]+)(\s+\(\d+\))?$/;
/** The heartbeat of interval mining: an empty block every interval. */
const EMPTY_BLOCKS = /^Mined empty block (#\d+ with base fee \d+|range #\d+ to #\d+)$/;

/**
 * A filter of `hardhat node`'s log, line by line, that keeps what a person needs: the start (listening
 * URL, the accounts and their keys), every transaction sent (hash, from, to, value, gas, block; also when
 * it failed), mined blocks that hold transactions, warnings and errors; and drops the read-only calls
 * that the nodes make thousands of (`eth_call`, `eth_getLogs`, `eth_blockNumber`, …, each printed as
 * a method line with indented details) and the empty blocks interval mining produces every second.
 * Returns the lines to print for each line read.
 */
export function chainLogFilter(): (line: string) => string[] {
  let inMethod: { keep: boolean } | undefined;
  return (line) => {
    const plain = line.replace(ANSI, "");
    const m = METHOD_LINE.exec(plain.trim());
    if (m && plain === plain.trimStart()) {
      inMethod = { keep: TX_METHODS.has(m[1]!) };
      return inMethod.keep ? [line] : [];
    }
    // A method's details are indented, in paragraphs (the call, then its error) separated by blank
    // lines; they end at the next line that is not indented.
    if (inMethod && (plain.trim() === "" || /^\s/.test(plain))) return inMethod.keep ? [line] : [];
    inMethod = undefined;
    if (EMPTY_BLOCKS.test(plain.trim())) return [];
    return [line];
  };
}

/** --guardian: an address, or "none" (the zero address: pausing disabled for good). */
const guardianOf = (s: string) => (s === "none" ? ZeroAddress : address(s));

export function registerChain(program: Command): void {
  chainOptions(
    program
      .command("deploy")
      .summary("deploys token, stake manager and coordinator → a deployment file")
      .description(
        "Deploys the stake token, the stake manager and the coordinator (set once as the stake manager's only locker and slasher) and writes their addresses to --out.",
      )
      .addOption(option("--unbonding <SECONDS>", "the stake manager's unbonding period", wholeNumber(1)).default(604800))
      .addOption(
        option("--guardian <ADDRESS>", "may pause the coordinator for a bounded time; 'none' (or the zero address): nobody ever can (default: the deploying account)", guardianOf),
      )
      .addOption(option("--out <FILE>", "where the addresses go").env("FEDSTAKE_DEPLOYMENT").default(inHome("deployment.json"), "$FEDSTAKE_HOME/deployment.json"))
      .addOption(jsonOption()),
    { deployment: false },
  ).action(async (o: Omit<ChainOpts, "deployment"> & { unbonding: number; guardian?: string; out: string; json?: boolean }) => {
    const wallet = await loadWallet({ keystore: o.keystore }, providerOf(o.rpc));
    const dep = await deployProtocol(wallet, { unbondingPeriod: o.unbonding, guardian: o.guardian });
    mkdirSync(dirname(resolve(o.out)), { recursive: true });
    writeFileSync(o.out, JSON.stringify(dep, null, 2) + "\n");
    const g = o.guardian ?? wallet.address;
    if (o.json) return printJson({ ...dep, guardian: g === ZeroAddress ? null : g, unbondingPeriod: o.unbonding, deployer: wallet.address, out: resolve(o.out) });
    console.log(
      `deployed on chain ${dep.chainId}: token ${dep.token}, stake manager ${dep.stakeManager}, coordinator ${dep.coordinator}, ` +
        `guardian ${g === ZeroAddress ? "none (pausing disabled)" : g} → ${o.out}`,
    );
  });

  chainOptions(
    program
      .command("mint")
      .summary("mints stake tokens (devnets; needs MINTER_ROLE)")
      .description("Mints stake tokens (devnets; the signer needs the token's MINTER_ROLE).")
      .addOption(option("--to <ADDRESS>", "the receiving account", address).makeOptionMandatory())
      .addOption(option("--amount <TOKENS>", "whole tokens, e.g. 100 or 2.5", tokenAmount).makeOptionMandatory())
      .addOption(jsonOption()),
  ).action(async (o: ChainOpts & { to: string; amount: bigint; json?: boolean }) => {
    const { wallet, token } = await signer(o);
    const rc = await sendTx(wallet, token, "mint", [o.to, o.amount]);
    if (o.json) return printJson({ to: o.to, amount: fmt(o.amount), balance: fmt(await token.getFunction("balanceOf")(o.to)), tx: rc.hash });
    console.log(`minted ${fmt(o.amount)} to ${o.to}: tx ${rc.hash}`);
  });

  chainOptions(
    program
      .command("stake")
      .summary("approves and stakes tokens")
      .description("Approves and stakes tokens in the stake manager.")
      .addOption(option("--amount <TOKENS>", "whole tokens, e.g. 100 or 2.5", tokenAmount).makeOptionMandatory())
      .addOption(jsonOption()),
  ).action(async (o: ChainOpts & { amount: bigint; json?: boolean }) => {
    const { wallet, dep, token, stake } = await signer(o);
    await sendTx(wallet, token, "approve", [dep.stakeManager, o.amount]);
    const rc = await sendTx(wallet, stake, "stake", [o.amount]);
    const now = fmt(await stake.getFunction("stakeOf")(wallet.address));
    if (o.json) return printJson({ account: wallet.address, amount: fmt(o.amount), stake: now, tx: rc.hash });
    console.log(`staked ${fmt(o.amount)}; stake now ${now}: tx ${rc.hash}`);
  });

  chainOptions(
    program
      .command("unstake")
      .summary("starts unbonding stake")
      .description("Starts unbonding free stake; `withdraw` pays it out after the unbonding period (a new request restarts the period for everything unbonding).")
      .addOption(option("--amount <TOKENS>", "whole tokens, e.g. 100 or 2.5", tokenAmount).makeOptionMandatory())
      .addOption(jsonOption()),
  ).action(async (o: ChainOpts & { amount: bigint; json?: boolean }) => {
    const { wallet, stake } = await signer(o);
    const rc = await sendTx(wallet, stake, "requestUnstake", [o.amount]);
    const [amount, release] = (await stake.getFunction("unbondingOf")(wallet.address)) as [bigint, bigint];
    if (o.json) return printJson({ account: wallet.address, amount: fmt(o.amount), unbonding: fmt(amount), releaseTime: isoTime(release), tx: rc.hash });
    console.log(`unbonding ${fmt(amount)}, withdrawable from ${isoTime(release)}: tx ${rc.hash}`);
  });

  chainOptions(
    program.command("withdraw").summary("withdraws stake whose unbonding is over").description("Withdraws unbonded stake whose unbonding period is over.").addOption(jsonOption()),
  ).action(async (o: ChainOpts & { json?: boolean }) => {
    const { wallet, token, stake } = await signer(o);
    const [amount] = (await stake.getFunction("unbondingOf")(wallet.address)) as [bigint, bigint];
    const rc = await sendTx(wallet, stake, "withdraw", []);
    const balance = fmt(await token.getFunction("balanceOf")(wallet.address));
    if (o.json) return printJson({ account: wallet.address, amount: fmt(amount), balance, tx: rc.hash });
    console.log(`withdrew ${fmt(amount)}; balance ${balance}: tx ${rc.hash}`);
  });

  const chain = program.command("chain").summary("the local development chain").description("The local development chain (Hardhat's node, as `npm run node` starts it).");
  chain
    .command("start")
    .summary("a local chain on 127.0.0.1 that keeps time by itself; logs transactions, not every call")
    .description(
      "Starts `hardhat node` on 127.0.0.1 (never another interface) with the repository's network `node`: a block every FEDSTAKE_BLOCK_MS (default 1000 ms) " +
        "whether or not transactions arrive, block timestamps that follow the wall clock, 20 funded development accounts (printed with their keys). " +
        "Its log keeps what a person needs: the accounts, the listening URL, every transaction sent (hash, from, to, gas, block) and errors; not every eth_call, eth_getLogs or empty block (--verbose: everything).",
    )
    .addOption(option("--port <N>", "the port on 127.0.0.1", wholeNumber(1)).default(8545))
    .addOption(option("--verbose", "print hardhat node's whole log (every RPC call)"))
    .action(async (o: { port: number; verbose?: boolean }) => {
      if (o.port > 65535) throw new UsageError(`--port must be a port number from 1 to 65535, got "${o.port}"`);
      const child = spawn(join(ROOT, "node_modules/.bin/hardhat"), ["node", "--hostname", "127.0.0.1", "--port", String(o.port)], {
        cwd: ROOT,
        env: CHILD_ENV,
        stdio: ["ignore", "pipe", "inherit"],
      });
      const keep = o.verbose ? (l: string) => [l] : chainLogFilter();
      createInterface({ input: child.stdout! }).on("line", (l) => {
        for (const x of keep(l)) process.stdout.write(x + "\n");
      });
      const stop = () => child.exitCode === null && child.kill("SIGTERM");
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
      const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((res) => child.once("exit", (c, s) => res([c, s])));
      if (code !== 0 && signal === null) throw new Error(`hardhat node exited with status ${code}${code === 1 ? ` (is port ${o.port} taken?)` : ""}`);
    });
}
