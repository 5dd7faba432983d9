/**
 * Deploys the fedstake protocol: stake token, stake manager and training coordinator, and gives the
 * coordinator the stake manager's SLASHER_ROLE. The deploying account is admin of all three.
 *
 *   npx hardhat ignition deploy ignition/modules/Fedstake.ts                      # in-process network
 *   npx hardhat ignition deploy ignition/modules/Fedstake.ts --network localhost  # `npm run node` on 127.0.0.1:8545
 *
 * Parameters (--parameters file.json): { "Fedstake": { "unbondingPeriod": 604800, "tokenName": "...", "tokenSymbol": "..." } }
 */
import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

export default buildModule("Fedstake", (m) => {
  const admin = m.getAccount(0);
  const unbondingPeriod = m.getParameter("unbondingPeriod", 7 * 24 * 3600);
  const token = m.contract("StakeToken", [m.getParameter("tokenName", "Fedstake"), m.getParameter("tokenSymbol", "FST"), admin]);
  const stakeManager = m.contract("StakeManager", [token, unbondingPeriod, admin]);
  const coordinator = m.contract("TrainingCoordinator", [token, stakeManager, admin]);
  const slasherRole = m.staticCall(stakeManager, "SLASHER_ROLE", []);
  m.call(stakeManager, "grantRole", [slasherRole, coordinator]);
  return { token, stakeManager, coordinator };
});
