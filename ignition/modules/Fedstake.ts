/**
 * Deploys the fedstake protocol: stake token, stake manager and training coordinator (which deploys its
 * extension), and makes the coordinator the stake manager's only locker and slasher (set once, for good).
 * The deploying account is the token's admin and minter (a devnet power) and the coordinator's guardian
 * (bounded pause); it has no power over stake. The steps, their arguments and the parameters' defaults
 * are the deployment plan's (worker/chain/deployment.ts), which `fedstake deploy` and the tests run too.
 *
 *   npx hardhat ignition deploy ignition/modules/Fedstake.ts                      # in-process network
 *   npx hardhat ignition deploy ignition/modules/Fedstake.ts --network localhost  # `npm run node` on 127.0.0.1:8545
 *
 * Parameters (--parameters file.json): { "Fedstake": { "unbondingPeriod": 604800, "tokenName": "...", "tokenSymbol": "...", "guardian": "0x…" } }
 */
import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";
import type { ArgumentType, NamedArtifactContractDeploymentFuture } from "@nomicfoundation/ignition-core";
import { DEPLOY_PLAN, resolveArg, type Arg, type Role } from "../../worker/chain/deployment.ts";

// The plan's steps become futures; Ignition orders them by what each uses, which is the plan's order.
export default buildModule("Fedstake", (m) => {
  const deployer = m.getAccount(0);
  const contracts = {} as Record<Role, NamedArtifactContractDeploymentFuture<string>>;
  const value = (arg: Arg) =>
    resolveArg<ArgumentType, typeof deployer>(arg, { deployer, contract: (role) => contracts[role], param: (name, fallback) => m.getParameter(name, fallback) });
  for (const step of DEPLOY_PLAN) {
    if ("deploy" in step) contracts[step.deploy] = m.contract(step.artifact, step.args.map(value));
    else m.call(contracts[step.call], step.method, step.args.map(value));
  }
  return contracts;
});
