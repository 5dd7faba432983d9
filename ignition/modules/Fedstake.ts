/**
 * Deploys the fedstake protocol: stake token, stake manager and training coordinator (which deploys its
 * extension), and makes the coordinator the stake manager's only locker and slasher (set once, for good).
 * The deploying account is the token's admin and minter (a devnet power) and the coordinator's guardian
 * (bounded pause); it has no power over stake.
 *
 *   npx hardhat ignition deploy ignition/modules/Fedstake.ts                      # in-process network
 *   npx hardhat ignition deploy ignition/modules/Fedstake.ts --network localhost  # `npm run node` on 127.0.0.1:8545
 *
 * Parameters (--parameters file.json): { "Fedstake": { "unbondingPeriod": 604800, "tokenName": "...", "tokenSymbol": "...", "guardian": "0x…" } }
 */
import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

export default buildModule("Fedstake", (m) => {
  const admin = m.getAccount(0);
  const unbondingPeriod = m.getParameter("unbondingPeriod", 7 * 24 * 3600);
  const token = m.contract("StakeToken", [m.getParameter("tokenName", "Fedstake"), m.getParameter("tokenSymbol", "FST"), admin]);
  const stakeManager = m.contract("StakeManager", [token, unbondingPeriod]);
  const coordinator = m.contract("TrainingCoordinator", [stakeManager, m.getParameter("guardian", admin)]);
  m.call(stakeManager, "setCoordinator", [coordinator]);
  return { token, stakeManager, coordinator };
});
