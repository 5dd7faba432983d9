/** Deployment and the stake itself: deploy, mint, stake, unstake, withdraw. */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { Command } from "commander";
import { ZeroAddress } from "ethers";
import { deployProtocol, sendTx } from "../../worker/chain/client.ts";
import { loadWallet } from "../../worker/chain/keys.ts";
import { inHome } from "../../worker/node/home.ts";
import { address, chainOptions, fmt, isoTime, option, providerOf, signer, tokenAmount, wholeNumber, type ChainOpts } from "./common.ts";

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
      .addOption(option("--out <FILE>", "where the addresses go").env("FEDSTAKE_DEPLOYMENT").default(inHome("deployment.json"), "$FEDSTAKE_HOME/deployment.json")),
    { deployment: false },
  ).action(async (o: Omit<ChainOpts, "deployment"> & { unbonding: number; guardian?: string; out: string }) => {
    const wallet = await loadWallet({ keystore: o.keystore }, providerOf(o.rpc));
    const dep = await deployProtocol(wallet, { unbondingPeriod: o.unbonding, guardian: o.guardian });
    mkdirSync(dirname(resolve(o.out)), { recursive: true });
    writeFileSync(o.out, JSON.stringify(dep, null, 2) + "\n");
    const g = o.guardian ?? wallet.address;
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
      .addOption(option("--amount <TOKENS>", "whole tokens, e.g. 100 or 2.5", tokenAmount).makeOptionMandatory()),
  ).action(async (o: ChainOpts & { to: string; amount: bigint }) => {
    const { wallet, token } = await signer(o);
    const rc = await sendTx(wallet, token, "mint", [o.to, o.amount]);
    console.log(`minted ${fmt(o.amount)} to ${o.to}: tx ${rc.hash}`);
  });

  chainOptions(
    program
      .command("stake")
      .summary("approves and stakes tokens")
      .description("Approves and stakes tokens in the stake manager.")
      .addOption(option("--amount <TOKENS>", "whole tokens, e.g. 100 or 2.5", tokenAmount).makeOptionMandatory()),
  ).action(async (o: ChainOpts & { amount: bigint }) => {
    const { wallet, dep, token, stake } = await signer(o);
    await sendTx(wallet, token, "approve", [dep.stakeManager, o.amount]);
    const rc = await sendTx(wallet, stake, "stake", [o.amount]);
    console.log(`staked ${fmt(o.amount)}; stake now ${fmt(await stake.getFunction("stakeOf")(wallet.address))}: tx ${rc.hash}`);
  });

  chainOptions(
    program
      .command("unstake")
      .summary("starts unbonding stake")
      .description("Starts unbonding free stake; `withdraw` pays it out after the unbonding period (a new request restarts the period for everything unbonding).")
      .addOption(option("--amount <TOKENS>", "whole tokens, e.g. 100 or 2.5", tokenAmount).makeOptionMandatory()),
  ).action(async (o: ChainOpts & { amount: bigint }) => {
    const { wallet, stake } = await signer(o);
    const rc = await sendTx(wallet, stake, "requestUnstake", [o.amount]);
    const [amount, release] = (await stake.getFunction("unbondingOf")(wallet.address)) as [bigint, bigint];
    console.log(`unbonding ${fmt(amount)}, withdrawable from ${isoTime(release)}: tx ${rc.hash}`);
  });

  chainOptions(
    program.command("withdraw").summary("withdraws stake whose unbonding is over").description("Withdraws unbonded stake whose unbonding period is over."),
  ).action(async (o: ChainOpts) => {
    const { wallet, token, stake } = await signer(o);
    const rc = await sendTx(wallet, stake, "withdraw", []);
    console.log(`withdrawn; balance ${fmt(await token.getFunction("balanceOf")(wallet.address))}: tx ${rc.hash}`);
  });
}
