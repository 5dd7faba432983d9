/**
 * The protocol's deployment plan, the one definition of which contracts are deployed, in which order,
 * with which constructor arguments, and how they are wired. Every deployment runs it: the ethers
 * deployer in client.ts (the CLI's `fedstake deploy`, the demo, the devnet, the contract tests' fixture)
 * and the Ignition module ignition/modules/Fedstake.ts. It is data, not code, so that each executor can
 * run it its own way: the ethers deployer one transaction after another, Ignition as futures.
 *
 * This module loads nothing (no artifacts, no ethers): Ignition loads it while building its module.
 */
import type { Deployment } from "./client.ts";

/** What a deployment may be given; anything not given takes its default from PARAMETER_DEFAULTS. */
export interface DeployParameters {
  /** The stake manager's unbonding period, in seconds. */
  unbondingPeriod: number;
  /** May pause the coordinator for a bounded time; the zero address: nobody ever can. */
  guardian: string;
  tokenName: string;
  tokenSymbol: string;
}

/** The deploying account: the token's admin and minter (a devnet power); it has no power over stake. */
export const DEPLOYER = { deployer: true } as const;

/** The contracts the plan deploys, by their key in a `Deployment`. */
export type Role = Exclude<keyof Deployment, "chainId">;

/** A constructor or call argument: a deployment parameter, an earlier step's contract, or the deployer. */
export type Arg = { param: keyof DeployParameters } | { contract: Role } | typeof DEPLOYER;

export type Step =
  | { deploy: Role; artifact: "StakeToken" | "StakeManager" | "TrainingCoordinator"; args: readonly Arg[] }
  | { call: Role; method: string; args: readonly Arg[] };

export const PARAMETER_DEFAULTS = {
  unbondingPeriod: 7 * 24 * 3600,
  guardian: DEPLOYER,
  tokenName: "Fedstake",
  tokenSymbol: "FST",
} satisfies { [K in keyof DeployParameters]: DeployParameters[K] | typeof DEPLOYER };

/**
 * In order: each step uses only what the steps before it deployed. The last step makes the coordinator
 * the stake manager's only locker and slasher; it can be set once, so no key can ever point slashing
 * elsewhere. (The coordinator deploys its extension itself.)
 */
export const DEPLOY_PLAN: readonly Step[] = [
  { deploy: "token", artifact: "StakeToken", args: [{ param: "tokenName" }, { param: "tokenSymbol" }, DEPLOYER] },
  { deploy: "stakeManager", artifact: "StakeManager", args: [{ contract: "token" }, { param: "unbondingPeriod" }] },
  { deploy: "coordinator", artifact: "TrainingCoordinator", args: [{ contract: "stakeManager" }, { param: "guardian" }] },
  { call: "stakeManager", method: "setCoordinator", args: [{ contract: "coordinator" }] },
];

/**
 * An argument in an executor's terms `V` (plain values and addresses for ethers, futures for Ignition),
 * the deployer being a `D`. `param` gets the parameter's default, already resolved, to fall back on.
 */
export function resolveArg<V, D extends V>(
  arg: Arg,
  env: { deployer: D; contract: (role: Role) => V; param: (name: keyof DeployParameters, fallback: D | string | number) => V },
): V {
  if ("deployer" in arg) return env.deployer;
  if ("contract" in arg) return env.contract(arg.contract);
  const fallback = PARAMETER_DEFAULTS[arg.param];
  // The one default that is not a value is DEPLOYER.
  return env.param(arg.param, typeof fallback === "object" ? env.deployer : fallback);
}
