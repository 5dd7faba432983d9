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

/** The local chain's block interval (`npm run node`), in ms. */
const BLOCK_MS = Number(process.env.FEDSTAKE_BLOCK_MS || 1000);
if (!Number.isInteger(BLOCK_MS) || BLOCK_MS < 100) throw new Error(`FEDSTAKE_BLOCK_MS must be an integer number of milliseconds ≥ 100, got ${JSON.stringify(process.env.FEDSTAKE_BLOCK_MS)}`);

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
    // The chain `npm run node` (`hardhat node`) starts, and the demo, the end-to-end tests and the
    // benchmarks with it. The protocol's phases follow block time, so the chain keeps time by itself: a
    // block every FEDSTAKE_BLOCK_MS (default 1000 ms) even with no transaction, and one per transaction.
    // Block timestamps follow the wall clock even when many transactions land in one second
    // (allowBlocksWithSameTimestamp), so chain time never runs ahead and phases last as long as configured.
    node: { type: "edr-simulated", chainType: "l1", allowBlocksWithSameTimestamp: true, mining: { auto: true, interval: BLOCK_MS } },
    // `npm run node` starts this chain on 127.0.0.1:8545; `--network localhost` talks to it.
    localhost: { type: "http", chainType: "l1", url: "http://127.0.0.1:8545" },
  },
});
