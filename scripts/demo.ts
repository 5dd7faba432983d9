/**
 * `npm run demo` — the one-command local network demo (hardhat node, deploy, an MNIST job, worker and
 * validator processes, live per-round view, report folder) is built in issue #5 on top of the training
 * engine (#3) and the artifact store (#4). Until then this says so plainly instead of pretending.
 */
console.error(
  [
    "fedstake: the end-to-end demo is not built yet (it needs the training engine and the IPFS artifact store).",
    "What works today:",
    "  npm test             contract tests (TypeScript + Solidity fuzz/invariant)",
    "  npm run bench:gas    gas of every protocol call -> bench/results/gas.json",
    "  npm run node         a local chain on 127.0.0.1:8545, then: npm run deploy:local",
  ].join("\n"),
);
process.exit(2);
