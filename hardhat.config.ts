import { createRequire } from "node:module";
import { defineConfig } from "hardhat/config";
import hardhatEthers from "@nomicfoundation/hardhat-ethers";
import hardhatMocha from "@nomicfoundation/hardhat-mocha";
import hardhatEthersChaiMatchers from "@nomicfoundation/hardhat-ethers-chai-matchers";
import hardhatNetworkHelpers from "@nomicfoundation/hardhat-network-helpers";
import hardhatIgnitionEthers from "@nomicfoundation/hardhat-ignition-ethers";

// Hardhat cannot download compilers on this network: use the solc-js build shipped in the
// npm package `solc`, pinned in package.json to exactly this version.
const SOLC_VERSION = "0.8.34";
const require = createRequire(import.meta.url);
const solcPath = require.resolve("solc/soljson.js");

const solcSettings = {
  // `cancun` for transient storage (ReentrancyGuardTransient); supported by mainnet and the major L2s.
  evmVersion: "cancun",
  // Low runs keep the coordinator under the 24 KiB code size limit.
  optimizer: { enabled: true, runs: 200 },
  viaIR: true,
};

export default defineConfig({
  plugins: [hardhatEthers, hardhatMocha, hardhatEthersChaiMatchers, hardhatNetworkHelpers, hardhatIgnitionEthers],
  solidity: {
    // Both build profiles (tests use `default`, `ignition deploy` uses `production`) compile the same way:
    // the coordinator's finalize needs the IR pipeline (stack depth), and gas numbers must match deployments.
    profiles: {
      default: { version: SOLC_VERSION, path: solcPath, settings: solcSettings },
      production: { version: SOLC_VERSION, path: solcPath, settings: solcSettings },
    },
  },
  test: {
    mocha: { timeout: 600_000 },
    solidity: {
      fuzz: { runs: 256 },
      invariant: { runs: 64, depth: 48, failOnRevert: false },
    },
  },
  networks: {
    // The chain `npm run demo` starts: block timestamps follow the wall clock even when many
    // transactions land in one second, so the protocol's phases last as long as configured.
    demoNode: { type: "edr-simulated", chainType: "l1", allowBlocksWithSameTimestamp: true },
    // `npm run node` starts this chain on 127.0.0.1:8545; `--network localhost` talks to it.
    localhost: { type: "http", chainType: "l1", url: "http://127.0.0.1:8545" },
  },
});
