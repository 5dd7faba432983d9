/**
 * The robustness harness, reduced (`npm run bench:robustness` runs the full grid): 6 workers on MNIST
 * Dirichlet(0.5) shards, 3 validators, 2 rounds of the real protocol, a third of the workers attacking.
 * Asserts the directions: attackers rejected and slashed, never paid; honest workers accepted, paid and
 * never slashed; every token accounted for. Then the same with sparse updates (top-1 %, 2-bit values,
 * error feedback): honest ones accepted by the default policy, sign-flipped ones still rejected.
 */
import { expect } from "chai";
import { network } from "hardhat";
import { DEFAULT_POPULATION, parseCompressionLabel, Population, runCell } from "../../sim/harness.ts";

const { ethers, networkHelpers: helpers } = await network.create();

describe("robustness harness (reduced): the vote against attacks", function () {
  this.timeout(600_000);
  let pop: Population;
  before(async () => {
    pop = await Population.create({ ...DEFAULT_POPULATION, workers: 6, validators: 3, rounds: 2, trainSamples: 6000, holdout: 600, testSamples: 1000 });
  });

  for (const attack of ["signflip", "labelflip", "zero"]) {
    it(`${attack}: the attackers' updates are rejected and slashed, the honest ones accepted and paid`, async function () {
      const row = await runCell(pop, { attack, fraction: 1 / 3, colludingStakeBps: 0, defence: "vote" }, { ethers, helpers });
      expect(row.attackerSubmitted).to.equal(4);
      expect(row.attackerAccepted, JSON.stringify(row)).to.equal(0);
      expect(row.attackerSlashed).to.equal(2);
      expect(row.rewardsToAttackers).to.equal("0.00");
      expect(row.honestSubmitted).to.equal(8);
      expect(row.honestRejected, JSON.stringify(row)).to.equal(0);
      expect(row.honestSlashed).to.equal(0);
      expect(row.tokensConserved).to.equal(true);
      expect(row.finalAccuracy).to.be.above(0.5);
    });
  }

  describe("with top-k compression (topk:0.01:2)", function () {
    const compression = parseCompressionLabel("topk:0.01:2");

    it("honest sparse updates are accepted and paid, and are over 100 × smaller than float32", async function () {
      const row = await runCell(pop, { attack: "none", fraction: 0, colludingStakeBps: 0, defence: "vote", compression }, { ethers, helpers });
      expect(row.honestSubmitted).to.equal(12);
      expect(row.honestRejected, JSON.stringify(row)).to.equal(0);
      expect(row.honestRejectedBy, "no honest validator rejected one").to.deep.equal({});
      expect(row.honestSlashed).to.equal(0);
      expect(row.tokensConserved).to.equal(true);
      expect(pop.f32UpdateBytes() / row.updateBytes!).to.be.above(100);
      expect(row.finalAccuracy).to.be.above(0.4);
    });

    it("sign-flipped sparse updates are still rejected and slashed", async function () {
      const row = await runCell(pop, { attack: "signflip", fraction: 1 / 3, colludingStakeBps: 0, defence: "vote", compression }, { ethers, helpers });
      expect(row.attackerAccepted, JSON.stringify(row)).to.equal(0);
      expect(row.attackerSlashed).to.equal(2);
      expect(row.honestRejected, JSON.stringify(row)).to.equal(0);
      expect(row.tokensConserved).to.equal(true);
    });
  });
});
