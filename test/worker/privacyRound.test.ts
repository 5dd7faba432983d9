/**
 * A private job end to end on the real contracts (in-process Hardhat network) with real training: the
 * job spec's privacy section (worker/privacy/policy.ts) makes every worker clip its update to C and add
 * Gaussian noise before anything leaves it, validators check each update's norm against the bound a
 * clipped and noised update has (`dp-norm`, first rule), and a worker whose next update would exceed
 * the job's ε withholds it. The update a 4-image worker published does not give its images back to
 * the reconstruction attack that recovers them from the same training without privacy. And a job whose
 * updates are sealed to its committee (worker/privacy/sealed.ts): every member reads every update, a
 * node outside the committee reads none, a byte changed anywhere fails authentication, and an update
 * sent in the clear is rejected.
 */
import { expect } from "chai";
import { network } from "hardhat";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HDNodeWallet, Mnemonic, ZeroHash, type Wallet } from "ethers";
import { CID } from "multiformats/cid";
import { DEFAULT_POPULATION, Population } from "../../sim/harness.ts";
import { MemoryStore } from "../../sim/memoryStore.ts";
import { decodeArtifact } from "../../worker/artifacts/index.ts";
import { Phase } from "../../worker/chain/protocol.ts";
import { subset } from "../../worker/data/dataset.ts";
import type { NodeConfig } from "../../worker/node/config.ts";
import { modelArtifact, NodeContext } from "../../worker/node/context.ts";
import { parseJobSpec, type JobSpec } from "../../worker/node/jobSpec.ts";
import { ValidatorRole } from "../../worker/node/validatorRole.ts";
import { WorkerRole } from "../../worker/node/workerRole.ts";
import { bestCorrelationPerImage, invertFirstDense } from "../../worker/privacy/reconstruction.ts";
import { epsilonSpent } from "../../worker/privacy/policy.ts";
import { isSealed, recipientsOf, SealError, sealKeysOf, unseal } from "../../worker/privacy/sealed.ts";
import { cidToChain } from "../../worker/storage/store.ts";
import { localUpdate, Trainer } from "../../worker/training/trainer.ts";
import { createJob, deployProtocol, ONE, toPhase } from "../helpers/fixture.ts";

const { ethers, networkHelpers: helpers } = await network.create();
const mnemonic = Mnemonic.fromPhrase("test test test test test test test test test test test junk");
const TRAIN = { epochs: 1, batch: 32, lr: 0.03, momentum: 0.9, threads: 1 };

type Event = { event: string; round?: string; [k: string]: unknown };

/**
 * Three workers and two validators (accounts from `accounts` on, after the admin and the sponsor) on the
 * real contracts, and a job of `rounds` rounds whose spec is `job`, pinned with the initial model in an
 * in-memory store; `cfg` makes a node's config, its data directory under `dir`.
 */
async function privateNetwork(pop: Population, job: JobSpec, o: { accounts: number; rounds: number }) {
  const wallets = Array.from({ length: 8 }, (_, i) => HDNodeWallet.fromMnemonic(mnemonic, `m/44'/60'/0'/0/${o.accounts + i}`).connect(ethers.provider) as unknown as Wallet);
  for (const w of wallets) await helpers.setBalance(w.address, 10n ** 21n);
  const p = await deployProtocol(ethers, { workers: 3, validators: 2, signers: wallets as never });
  const store = new MemoryStore();
  const initCid = await store.add(modelArtifact(0n, 0, new Uint8Array(0), pop.initialModel(), 0n));
  const specCid = await store.add(new TextEncoder().encode(JSON.stringify(job)));
  const jobId = await createJob(p, helpers, {
    initialModelDigest: cidToChain(initCid).digest, initialModelCodec: cidToChain(initCid).codec,
    specDigest: cidToChain(specCid).digest, specCodec: cidToChain(specCid).codec,
    numRounds: o.rounds, rewardPerRound: 100n * ONE, maxUpdates: 8, maxValidators: 2, attestBps: 5001, rejectSlashAmount: 10n * ONE, missedRevealSlashAmount: 5n * ONE,
  });
  const deployment = { chainId: 31337, token: await p.token.getAddress(), stakeManager: await p.stake.getAddress(), coordinator: await p.coord.getAddress() };
  const dir = mkdtempSync(join(tmpdir(), "fedstake-private-"));
  const cfg = (name: string, role: "worker" | "validator", train = TRAIN): NodeConfig => ({
    role, name, rpc: "", deployment, jobId: String(jobId), dataDir: join(dir, name), peers: [], data: { dataset: "idx", images: "", labels: "" }, train,
  });
  return { p, store, jobId, wallets, dir, cfg };
}

describe("a private job: clipped and noised updates, the validators' norm bound, a worker's ε budget", function () {
  this.timeout(300_000);

  it("workers clip and noise, validators accept what the bound allows, a 4-image worker's images stay hidden, and round 2 is withheld at the budget", async function () {
    const pop = await Population.create({ ...DEFAULT_POPULATION, workers: 3, validators: 2, rounds: 2, trainSamples: 1500, holdout: 200, testSamples: 100 });
    // A noise multiplier whose budget covers one release and not two.
    const probe = { mode: "local", clipNorm: 0.5, noiseMultiplier: 1.2, epsilon: 1, delta: 1e-5 } as const;
    const epsilon = (epsilonSpent(probe, 1) + epsilonSpent(probe, 2)) / 2;
    const raw = { model: pop.job.model, aggregation: pop.job.aggregation, compression: { kind: "int8" }, privacy: { ...probe, epsilon } };
    const job = parseJobSpec(JSON.parse(JSON.stringify(raw)));
    expect(job.validation.rules.map((r) => r.rule)).to.deep.equal(["dp-norm", "duplicate"]);
    expect(job.validation.rules[0]).to.deep.include({ clipNorm: 0.5, noiseStd: 0.6 });
    // The spec as pinned (parsed, written back) parses to itself.
    expect(parseJobSpec(JSON.parse(JSON.stringify(job)))).to.deep.equal(job);

    const { p, store, jobId, wallets, dir, cfg } = await privateNetwork(pop, job, { accounts: 950, rounds: 2 });
    // worker-0 trains one step on 4 images: without privacy, its update would give them back.
    const four = subset(pop.shards[0]!, [0, 1, 2, 3]);
    const images = [0, 1, 2, 3].map((i) => four.x.subarray(i * four.features, (i + 1) * four.features));
    const small = { ...TRAIN, batch: 4 };
    const wctx = [
      NodeContext.inProcess({ cfg: cfg("worker-0", "worker", small), wallet: wallets[2]!, store: store.peer().asNodeStore(), job, data: four }),
      ...[1, 2].map((i) => NodeContext.inProcess({ cfg: cfg(`worker-${i}`, "worker"), wallet: wallets[2 + i]!, store: store.peer().asNodeStore(), job, data: pop.shards[i]! })),
    ];
    const workers = wctx.map((c) => new WorkerRole(c));
    const validators = [0, 1].map((j) => new ValidatorRole(NodeContext.inProcess({ cfg: cfg(`validator-${j}`, "validator"), wallet: wallets[5 + j]!, store: store.peer().asNodeStore(), job, data: pop.holdouts[j]! })));
    const events = (name: string): Event[] => readFileSync(join(dir, name, "events.jsonl"), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Event);

    await toPhase(p, helpers, jobId, Phase.Commit);
    for (const w of workers) await w.tick(1n, Phase.Commit);
    for (const name of ["worker-0", "worker-1", "worker-2"]) {
      const trained = events(name).find((e) => e.event === "trained")!;
      // Noised at σ = z·C = 0.6; an epoch over a full shard moves further than C = 0.5, so it was clipped
      // (worker-0's single step on 4 images may not be).
      expect(trained, name).to.deep.include({ noiseStd: 0.6, epsilon: Number(epsilonSpent(job.privacy!, 1).toFixed(4)) });
      if (name !== "worker-0") expect(trained, name).to.deep.include({ clipped: true });
      expect(trained.preClipNorm, name).to.be.a("number").above(0);
    }
    for (const phase of [Phase.Reveal, Phase.VoteCommit, Phase.VoteReveal, Phase.Finalize, Phase.Attest]) {
      if (phase !== Phase.Attest) await toPhase(p, helpers, jobId, phase); // attestation opens with finalize
      for (const w of workers) await w.tick(1n, phase);
      for (const v of validators) await v.tick(1n, phase);
    }
    // Every noised update is within the bound, and accepted; dp-norm's bound is in the decision's metrics.
    const res = await p.coord.roundResult(jobId, 1n);
    expect(BigInt(res.acceptedBitmap)).to.equal(0b111n);
    const decisions = events("validator-0").filter((e) => e.event === "decision");
    expect(decisions).to.have.length(3);
    for (const d of decisions) expect(d.metrics as Record<string, number>).to.have.property("dpNormUpper").that.is.above((d.metrics as Record<string, number>).norm!);
    expect((await p.coord.phaseOf(jobId))[0]).to.equal(2n);

    // What worker-0 published (as anyone who fetches its CID decodes it) hides its images …
    const published = decodeArtifact(await store.get(CID.parse(wctx[0]!.state.round(1).cid!))).tensors;
    const leaked = bestCorrelationPerImage(invertFirstDense(job.model, published), images);
    expect(Math.max(...leaked), `best correlations ${leaked}`).to.be.below(0.5);
    // … which the same training without privacy gives back, every one of them.
    const trainer = await Trainer.create(job.model, { batch: 4, steps: 16, threads: 1, optimizer: { kind: "sgd", lr: TRAIN.lr, momentum: TRAIN.momentum } });
    const { delta: plain } = await localUpdate(trainer, pop.initialModel(), four, { epochs: 1, seed: 1 });
    const recovered = bestCorrelationPerImage(invertFirstDense(job.model, plain), images);
    expect(Math.min(...recovered), `best correlations ${recovered}`).to.be.above(0.9);

    // Round 2: a second release would exceed ε, so no worker trains or commits, and each says why.
    await toPhase(p, helpers, jobId, Phase.Commit);
    for (const w of workers) await w.tick(2n, Phase.Commit);
    for (const [i, c] of wctx.entries()) {
      expect(c.state.round(2).withheld, `worker-${i}`).to.match(/^privacy budget: 1 update released spend ε = [\d.]+; one more would spend [\d.]+, above the job's ε = /);
      expect(await p.coord.updateCommitmentOf(jobId, 2n, wallets[2 + i]!.address)).to.equal(ZeroHash);
      expect(events(`worker-${i}`).filter((e) => e.event === "withheld")).to.have.length(1);
      expect(events(`worker-${i}`).filter((e) => e.event === "trained")).to.have.length(1);
    }
    // Ticking again does not train, commit or say it twice.
    for (const w of workers) await w.tick(2n, Phase.Commit);
    expect(events("worker-1").filter((e) => e.event === "withheld")).to.have.length(1);
  });

  it("updates sealed to the committee: every member reads them, an outsider reads none, tampering fails, one in the clear is rejected (and a commitment mined but not recorded is recovered)", async function () {
    const pop = await Population.create({ ...DEFAULT_POPULATION, workers: 3, validators: 2, rounds: 1, trainSamples: 1500, holdout: 200, testSamples: 100 });
    const job = parseJobSpec({
      model: pop.job.model,
      aggregation: pop.job.aggregation,
      validation: { rules: [{ rule: "duplicate" }, { rule: "norm", minRatio: 0.01, maxRatio: 100 }] },
      encryption: { updates: "committee" },
    });
    const { p, store, jobId, wallets, dir, cfg } = await privateNetwork(pop, job, { accounts: 970, rounds: 1 });
    // worker-2 runs with a copy of the spec that does not seal: it sends its update in the clear.
    const clear = { ...job, encryption: undefined };
    const wctx = [0, 1, 2].map((i) => NodeContext.inProcess({ cfg: cfg(`worker-${i}`, "worker"), wallet: wallets[2 + i]!, store: store.peer().asNodeStore(), job: i === 2 ? clear : job, data: pop.shards[i]! }));
    const vctx = [0, 1].map((j) => NodeContext.inProcess({ cfg: cfg(`validator-${j}`, "validator"), wallet: wallets[5 + j]!, store: store.peer().asNodeStore(), job, data: pop.holdouts[j]! }));
    // Each validator publishes its sealing key with its endpoint (the daemons do this at start).
    for (const c of vctx) await c.publishEndpoint();
    const workers = wctx.map((c) => new WorkerRole(c));
    const validators = vctx.map((c) => new ValidatorRole(c));

    await toPhase(p, helpers, jobId, Phase.Commit);
    for (const w of workers) await w.tick(1n, Phase.Commit);
    const published = await Promise.all(wctx.map(async (c) => store.get(CID.parse(c.state.round(1).cid!))));
    expect(published.map(isSealed)).to.deep.equal([true, true, false]);
    const members = [wallets[5]!.address, wallets[6]!.address].map((a) => a.toLowerCase());
    for (const bytes of published.slice(0, 2)) {
      expect(recipientsOf(bytes)).to.have.members(members);
      // Every member reads it, as the artifact the worker encoded.
      for (const c of vctx) expect(decodeArtifact(await unseal(bytes, { address: c.wallet.address, keys: await c.sealKeys() })).header.round).to.equal(1);
      // A node outside the committee that fetches the CID gets ciphertext it cannot open (nor decode).
      const outsider = wallets[7]!;
      const err = await unseal(bytes, { address: outsider.address, keys: await sealKeysOf(outsider.privateKey) }).then(() => undefined, (e: Error) => e);
      expect(err).to.be.instanceOf(SealError);
      expect((err as SealError).code).to.equal("no-slot");
      expect(() => decodeArtifact(bytes)).to.throw();
      // One byte changed, in the body or in a member's slot of the header: authentication fails.
      for (const at of [bytes.length - 40, new TextDecoder().decode(bytes).indexOf('"enc":"') + 10]) {
        const bent = Uint8Array.from(bytes);
        bent[at] = bent[at] === 0x30 ? 0x31 : 0x30; // another hex digit (or body byte): well-formed, but not what was sealed
        const e = await unseal(bent, { address: vctx[0]!.wallet.address, keys: await vctx[0]!.sealKeys() }).then(() => undefined, (x: Error) => x);
        expect((e as SealError)?.code, `byte ${at}`).to.equal("authentication");
      }
    }
    // worker-1 as if killed after its commitment was mined and before its state file said so: it finds
    // the commitment on chain, records it, and reveals (rather than missing the reveal and being slashed).
    wctx[1]!.state.save(1, { committed: undefined });
    for (const phase of [Phase.Reveal, Phase.VoteCommit, Phase.VoteReveal, Phase.Finalize, Phase.Attest]) {
      if (phase !== Phase.Attest) await toPhase(p, helpers, jobId, phase);
      for (const w of workers) await w.tick(1n, phase);
      for (const v of validators) await v.tick(1n, phase);
    }
    expect(events(dir, "worker-1").some((e) => e.event === "committed" && e.tx === "(mined earlier, recorded now)")).to.equal(true);
    expect(wctx[1]!.state.round(1)).to.deep.include({ committed: true, revealed: true });
    // The sealed updates were read, judged and accepted; the one in the clear was rejected, saying why.
    expect(BigInt((await p.coord.roundResult(jobId, 1n)).acceptedBitmap)).to.equal(0b011n);
    const clearDecision = events(dir, "validator-0").find((e) => e.event === "decision" && e.index === 2)!;
    expect(clearDecision).to.deep.include({ accept: false, code: "not-sealed" });
    expect(clearDecision.reason).to.match(/sent in the clear: the job seals updates to its committee/);
    expect(Number((await p.coord.phaseOf(jobId))[1])).to.equal(Phase.Completed);
  });
});

function events(dir: string, name: string): Event[] {
  return readFileSync(join(dir, name, "events.jsonl"), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Event);
}
