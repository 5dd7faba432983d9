/**
 * Finding a model without a configured peer (worker/node/providers.ts): a node that missed round 1 (a
 * late joiner, a restart) fetches round 2's base, the model round 1's validators attested, from the
 * endpoint an attesting validator published on chain; accounts that published nothing are reported.
 */
import { expect } from "chai";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Contract } from "ethers";
import { network } from "hardhat";
import { decodeArtifact } from "../../worker/artifacts/index.ts";
import { modelArtifact, modelTensors } from "../../worker/node/context.ts";
import { dialPublished, ModelHolders, modelHolders } from "../../worker/node/providers.ts";
import { HeliaStore } from "../../worker/storage/heliaStore.ts";
import { cidToChain, type Dialer } from "../../worker/storage/store.ts";
import { initParams, paramsOf } from "../../worker/training/model.ts";
import { MNIST_MLP } from "../../worker/training/presets.ts";
import { as, createJob, deployProtocol, playRound, submission, vote } from "../helpers/fixture.ts";

describe("model providers: the attesting validators' published endpoints", function () {
  const dirs: string[] = [];
  const stores: HeliaStore[] = [];
  const store = async () => {
    const dir = mkdtempSync(join(tmpdir(), "fedstake-providers-"));
    dirs.push(dir);
    const s = await HeliaStore.create({ dataDir: dir });
    stores.push(s);
    return s;
  };
  after(async function () {
    for (const s of stores) await s.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("a node connected to nobody fetches round 2's base from a validator that attested it", async function () {
    const { ethers, networkHelpers: helpers } = await network.create();
    const p = await deployProtocol(ethers, { workers: 1, validators: 2 });
    const [v0, v1] = p.validators as [(typeof p.validators)[0], (typeof p.validators)[0]];
    const jobId = await createJob(p, helpers, { maxIdleRounds: 4 });
    await playRound(p, helpers, jobId, [submission(p.workers[0]!, "u1")], () => [vote(v0, 1n), vote(v1, 1n)]);

    // Validator 0 holds (pins) the aggregate it attests and publishes its node's address; validator 1 publishes none.
    const holder = await store();
    const init = initParams(MNIST_MLP);
    const tensors = paramsOf(MNIST_MLP).map((q) => ({ name: q.name, shape: q.shape, data: init.get(q.name)! }));
    const cid = await holder.add(modelArtifact(jobId, 1, new Uint8Array(36), tensors, 100n));
    const { digest, codec } = cidToChain(cid);
    // A node's long-lived lookup sees attestations made after its first look (it reads only new blocks).
    const lookup = new ModelHolders(p.coord, jobId, p.fromBlock);
    expect(await lookup.of(digest)).to.deep.equal([p.sponsor.address]);
    await as(p.coord, v0).attestModel(jobId, 1n, digest, codec);
    expect(await lookup.of(digest)).to.deep.equal([v0.address, p.sponsor.address]);
    await as(p.coord, v1).attestModel(jobId, 1n, digest, codec);
    expect(await lookup.of(digest.toUpperCase().replace("0X", "0x"))).to.deep.equal([v0.address, v1.address, p.sponsor.address]);
    await as(p.stake, v0).setEndpoint(Buffer.from(holder.multiaddrs().join("\n")));
    const base = await p.coord.roundResult(jobId, 2n);
    expect(base.baseDigest).to.equal(digest);

    const holders = await modelHolders(p.coord, jobId, base.baseDigest, p.fromBlock);
    expect(holders).to.deep.equal([v0.address, v1.address, p.sponsor.address]);
    const late = await store();
    const failed = await dialPublished(late, p.stake, holders);
    expect(failed).to.deep.equal([`${v1.address}: no endpoint published`, `${p.sponsor.address}: no endpoint published`]);
    const fetched = modelTensors(decodeArtifact(await late.get(cid, { timeoutMs: 20_000 })), MNIST_MLP, String(cid));
    expect(fetched.map((t) => t.name)).to.deep.equal(tensors.map((t) => t.name));
    expect(Array.from(fetched[0]!.data.subarray(0, 8))).to.deep.equal(Array.from(tensors[0]!.data.subarray(0, 8)));

    // An artifact that is not a model of the spec is refused, with the tensor that differs.
    const wrong = [{ ...tensors[0]!, name: "other" }, ...tensors.slice(1)];
    expect(() => modelTensors(decodeArtifact(modelArtifact(jobId, 1, new Uint8Array(36), wrong, 100n)), MNIST_MLP, "x")).to.throw(/x is not a model of this job's spec \(tensor 0 is "other"/);
  });

  it("dials through any Dialer: the published addresses in order, until one answers", async function () {
    const endpoints: Record<string, string> = { a: "/ip4/127.0.0.1/tcp/1\n/ip4/127.0.0.1/tcp/2\n/ip4/127.0.0.1/tcp/3", b: "/ip4/127.0.0.1/tcp/4", c: "" };
    const stake = { getFunction: () => async (account: string) => "0x" + Buffer.from(endpoints[account]!).toString("hex") } as unknown as Contract;
    const tried: string[] = [];
    const dialer: Pick<Dialer, "dial"> = {
      dial: async (addr) => {
        tried.push(addr);
        if (!addr.endsWith("/tcp/2")) throw new Error("refused");
      },
    };
    expect(await dialPublished(dialer, stake, ["a", "b", "c", "a"])).to.deep.equal(["b: no published address answered", "c: no endpoint published"]);
    expect(tried).to.deep.equal(["/ip4/127.0.0.1/tcp/1", "/ip4/127.0.0.1/tcp/2", "/ip4/127.0.0.1/tcp/4"]);
  });
});
