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

export default defineConfig({
  plugins: [hardhatEthers, hardhatMocha, hardhatEthersChaiMatchers, hardhatNetworkHelpers, hardhatIgnitionEthers],
  solidity: {
    version: SOLC_VERSION,
    path: solcPath,
    settings: {
      // `cancun` for transient storage (ReentrancyGuardTransient); supported by mainnet and the major L2s.
      evmVersion: "cancun",
      optimizer: { enabled: true, runs: 200 },
      viaIR: true,
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
    // `npm run node` starts this chain on 127.0.0.1:8545; `--network localhost` talks to it.
    localhost: { type: "http", chainType: "l1", url: "http://127.0.0.1:8545" },
  },
});
