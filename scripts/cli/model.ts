/**
 * Models: `model attest` (a validator's step), and for anyone `model show` (a round's attested model),
 * `model get` (its artifact, fetched over IPFS and verified against the CID on chain, and optionally an
 * ONNX inference graph of it) and `model eval` (its loss and accuracy on a local IDX or CSV file).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import type { Contract } from "ethers";
import { multiaddr } from "@multiformats/multiaddr";
import type { CID } from "multiformats/cid";
import { decodeArtifact, type Tensor } from "../../worker/artifacts/index.ts";
import { outcomeName } from "../../worker/chain/protocol.ts";
import { loadCsv, SCALES, type Scale } from "../../worker/data/csv.ts";
import { DataError, type Dataset } from "../../worker/data/dataset.ts";
import { loadIdx } from "../../worker/data/idx.ts";
import { modelTensors } from "../../worker/node/context.ts";
import { fetchJobSpec, jobCreated } from "../../worker/node/jobSpec.ts";
import { queryEvents } from "../../worker/chain/events.ts";
import { dialPublished, modelHolders } from "../../worker/node/providers.ts";
import { ValidatorRole } from "../../worker/node/validatorRole.ts";
import { HeliaStore } from "../../worker/storage/heliaStore.ts";
import { allowedAddress } from "../../worker/storage/loopbackGater.ts";
import { cidFromChain } from "../../worker/storage/store.ts";
import { inferenceModel } from "../../worker/training/model.ts";
import type { ModelSpec } from "../../worker/training/spec.ts";
import { evaluate } from "../../worker/training/trainer.ts";
import {
  chainOptions,
  currentRound,
  eventsFrom,
  fmt,
  jsonOption,
  nodeContext,
  nodeOptions,
  option,
  positiveId,
  printJson,
  reader,
  repeatable,
  UsageError,
  wholeNumber,
  withNode,
  type ChainOpts,
  type NodeOpts,
} from "./common.ts";

const ZERO_DIGEST = "0x" + "0".repeat(64);
const FETCH_GROUP = "Fetch options:";

/** What the chain says about a round's model. */
interface RoundModel {
  round: bigint;
  outcome: string;
  base: CID;
  /** The attested model (attestations reached the job's attestBps), if any, and its digest on chain. */
  model?: CID;
  modelDigest?: string;
  /** Every CID validators attested in the round, with the stake behind it and who attested it. */
  attestations: { cid: string; stake: bigint; validators: string[] }[];
  /** Where the protocol's events begin (the deployment's block): later lookups start there. */
  fromBlock: number;
}

/** The round's model record; without `round`, the latest round with an attested model. */
async function roundModel(coord: Contract, jobId: bigint, round: bigint | undefined, fromBlock: number): Promise<RoundModel> {
  const current = await currentRound(coord, jobId);
  if (round !== undefined && round > current) throw new UsageError(`--round ${round}: job ${jobId} has opened ${current} round${current === 1n ? "" : "s"} so far`);
  let r = round;
  if (r === undefined) {
    for (let k = current; k >= 1n && r === undefined; k--) {
      if ((await coord.getFunction("roundResult")(jobId, k)).modelDigest !== ZERO_DIGEST) r = k;
    }
    if (r === undefined) throw new Error(`job ${jobId} has no attested model yet (${current} round${current === 1n ? "" : "s"} opened; the initial model is round 1's base: model show --round 1)`);
  }
  const res = await coord.getFunction("roundResult")(jobId, r);
  const byCid = new Map<string, { cid: string; stake: bigint; validators: string[] }>();
  for (const e of await queryEvents(coord, coord.filters.ModelAttested!(jobId, r), fromBlock)) {
    const cid = (await cidFromChain(e.args.digest, Number(e.args.codec))).toString();
    const a = byCid.get(cid) ?? { cid, stake: 0n, validators: [] };
    // stakeFor is the CID's running tally, so the last event holds the total.
    a.stake = BigInt(e.args.stakeFor);
    a.validators.push(e.args.validator as string);
    byCid.set(cid, a);
  }
  return {
    round: r,
    outcome: outcomeName(res.outcome),
    base: await cidFromChain(res.baseDigest, Number(res.baseCodec)),
    model: res.modelDigest === ZERO_DIGEST ? undefined : await cidFromChain(res.modelDigest, Number(res.modelCodec)),
    modelDigest: res.modelDigest === ZERO_DIGEST ? undefined : (res.modelDigest as string),
    attestations: [...byCid.values()],
    fromBlock,
  };
}

interface FetchOpts extends Pick<ChainOpts, "rpc" | "deployment"> {
  job: bigint;
  round?: bigint;
  peer: string[];
  allowNet: string[];
  ipfsDir?: string;
  timeout: number;
}

/** The options of the commands that fetch a model: job, round, where to find it, how long to wait. */
function fetchOptions(cmd: Command): Command {
  return chainOptions(
    cmd
      .addOption(option("--job <ID>", "the job id", positiveId).makeOptionMandatory())
      .addOption(option("--round <R>", "the round whose attested model to use (default: the latest round with one)", positiveId))
      .addOption(
        repeatable(
          "--peer <MULTIADDR>",
          "also dial this IPFS node (repeatable); the validators that attested the model and the job's sponsor are dialled at the endpoints they published on chain",
          (s) => {
            try {
              return multiaddr(s).toString();
            } catch (e) {
              throw new Error(`must be a multiaddr like /ip4/127.0.0.1/tcp/4001/p2p/12D3Koo…: ${(e as Error).message}`);
            }
          },
        ).helpGroup(FETCH_GROUP),
      )
      .addOption(repeatable("--allow-net <PREFIX>", "an IPv4 prefix (e.g. 10.0.0.) this node may connect to besides loopback (repeatable)", (s) => s).helpGroup(FETCH_GROUP))
      .addOption(option("--ipfs-dir <DIR>", "keep the fetched blocks in this IPFS repository (default: a temporary one, removed afterwards)").helpGroup(FETCH_GROUP))
      .addOption(option("--timeout <SECONDS>", "how long to wait for the artifact", wholeNumber(1)).default(30).helpGroup(FETCH_GROUP)),
    { key: "none" },
  );
}

/**
 * Starts an embedded IPFS node (loopback only unless --allow-net), dials --peer and the endpoints that
 * the attesting validators and the sponsor published on chain, and runs `f` with it.
 */
async function withFetcher<T>(o: FetchOpts, coord: Contract, stake: Contract, rm: RoundModel, f: (store: HeliaStore) => Promise<T>): Promise<T> {
  for (const p of o.peer) {
    if (!allowedAddress(multiaddr(p), { allowPrefixes: o.allowNet })) throw new UsageError(`--peer ${p} is outside loopback: allow its network with --allow-net (e.g. --allow-net 10.0.0.)`);
  }
  const temp = o.ipfsDir === undefined ? mkdtempSync(join(tmpdir(), "fedstake-model-")) : undefined;
  const store = await HeliaStore.create({ dataDir: temp ?? resolve(o.ipfsDir!), gater: { allowPrefixes: o.allowNet } });
  try {
    const failed: string[] = [];
    for (const p of o.peer) await store.dial(p).catch((e: Error) => failed.push(`${p}: ${e.message}`));
    // The attested model's holders: the validators that attested it, then the sponsor (who serves the job spec).
    failed.push(...(await dialPublished(store, stake, await modelHolders(coord, o.job, rm.modelDigest ?? ZERO_DIGEST, rm.fromBlock))));
    try {
      return await f(store);
    } catch (e) {
      if (failed.length) (e as Error).message += ` (could not reach: ${failed.join("; ")})`;
      throw e;
    }
  } finally {
    await store.stop().catch(() => {});
    if (temp) rmSync(temp, { recursive: true, force: true });
  }
}

/** The round's attested model artifact, fetched and checked to be a model of the job's spec. */
async function fetchAttested(store: HeliaStore, coord: Contract, rm: RoundModel, o: FetchOpts): Promise<{ cid: CID; bytes: Uint8Array; tensors: Tensor[]; spec: ModelSpec }> {
  if (!rm.model) throw new Error(`round ${rm.round} (${rm.outcome}) has no attested model${rm.attestations.length ? ` (attested so far: ${rm.attestations.map((a) => a.cid).join(", ")})` : ""}`);
  const bytes = await store.get(rm.model, { timeoutMs: o.timeout * 1000 });
  const spec = (await fetchJobSpec(store, o.job, (await jobCreated(coord, o.job, rm.fromBlock)).specCid)).model;
  return { cid: rm.model, bytes, tensors: modelTensors(decodeArtifact(bytes), spec, String(rm.model)), spec };
}

export function registerModel(program: Command): void {
  const model = program.command("model").summary("a round's model: attest, show, get, eval").description("A round's model: attest it (validators), show its CID, download it, evaluate it on local data.");

  nodeOptions(
    model
      .command("attest")
      .summary("aggregates the accepted updates, pins the model, attests its CID")
      .description(
        "Aggregates the round's accepted updates with the job's policy, pins the model and attests its CID (a validator that revealed its vote). " +
          "Exit code 3 when it is too late: the round moved on before this attestation (or this validator attested already).",
      )
      .addOption(jsonOption()),
  ).action(async (file: string, o: NodeOpts & { json?: boolean }) => {
    const ctx = await nodeContext(o, file, "validator");
    const events = eventsFrom(ctx);
    await withNode(ctx, o, async (round) => {
      await new ValidatorRole(ctx).attest(round);
      const logged = events();
      const done = logged.find((e) => e.event === "attested");
      const result = {
        job: ctx.jobId.toString(),
        round: Number(round),
        model: (done?.model as string | undefined) ?? ctx.state.round(round).modelCid ?? null,
        updates: (done?.updates as number | undefined) ?? null,
        tx: (done?.tx as string | undefined) ?? null,
        score: logged.find((e) => e.event === "scored") ?? null,
      };
      if (o.json) return printJson(result);
      console.log(`round ${result.round}: attested model ${result.model}${result.updates === null ? "" : ` (${result.updates} updates)`}${result.tx ? `: tx ${result.tx}` : ""}`);
    });
  });

  chainOptions(
    model
      .command("show")
      .summary("a round's attested model CID and its attestations")
      .description("A round's model: its attested CID (once validators holding attestBps of the revealed vote stake attested it), every CID attested with its stake, the round's base model.")
      .addOption(option("--job <ID>", "the job id", positiveId).makeOptionMandatory())
      .addOption(option("--round <R>", "the round (default: the latest round with an attested model)", positiveId))
      .addOption(jsonOption()),
    { key: "none" },
  ).action(async (o: ChainOpts & { job: bigint; round?: bigint; json?: boolean }) => {
    const { coord, fromBlock } = await reader(o);
    const rm = await roundModel(coord, o.job, o.round, fromBlock);
    const show = {
      job: o.job.toString(),
      round: Number(rm.round),
      outcome: rm.outcome,
      attested: rm.model !== undefined,
      model: rm.model?.toString() ?? null,
      base: rm.base.toString(),
      attestations: rm.attestations.map((a) => ({ ...a, stake: fmt(a.stake) })),
    };
    if (o.json) return printJson(show);
    console.log(`job ${show.job} round ${show.round} (${show.outcome}): ${show.model ? `model ${show.model} (attested)` : "no attested model"}; base ${show.base}`);
    for (const a of show.attestations) console.log(`  attested ${a.cid}: stake ${a.stake} by ${a.validators.join(", ")}`);
  });

  fetchOptions(
    model
      .command("get")
      .summary("downloads a round's attested model artifact (--onnx: also as an ONNX inference graph)")
      .description(
        "Downloads a round's attested model artifact (the fedstake container, f32 tensors), verified block by block against the CID on chain, to --out; with --onnx, also writes the model as an ONNX inference graph that any ONNX runtime can run.",
      )
      .addOption(option("--out <FILE>", "where to write the artifact").makeOptionMandatory())
      .addOption(option("--onnx <FILE>", 'also write an ONNX inference graph (opset 17): input "input" [N, ...spec.input] → output "logits" [N, classes], the raw outputs, with the weights built in'))
      .addOption(jsonOption()),
  ).action(async (o: FetchOpts & { out: string; onnx?: string; json?: boolean }) => {
    const { coord, stake, fromBlock } = await reader(o);
    const rm = await roundModel(coord, o.job, o.round, fromBlock);
    const result = await withFetcher(o, coord, stake, rm, async (store) => {
      const { cid, bytes, tensors, spec } = await fetchAttested(store, coord, rm, o);
      writeFileSync(o.out, bytes);
      const got = { job: o.job.toString(), round: Number(rm.round), model: cid.toString(), tensors: tensors.length, bytes: bytes.length, out: resolve(o.out), onnx: null as null | { out: string; bytes: number; input: number[]; classes: number } };
      if (!o.json) console.log(`round ${rm.round} model ${cid} (${tensors.length} tensors, ${bytes.length} bytes) → ${o.out}`);
      if (o.onnx === undefined) return got;
      const graph = inferenceModel(spec, new Map(tensors.map((t) => [t.name, t.data])));
      writeFileSync(o.onnx, graph);
      got.onnx = { out: resolve(o.onnx), bytes: graph.length, input: [...spec.input], classes: spec.classes };
      if (!o.json) console.log(`ONNX inference graph (input [N,${spec.input}] → logits [N,${spec.classes}], ${graph.length} bytes) → ${o.onnx}`);
      return got;
    });
    if (o.json) printJson(result);
  });

  fetchOptions(
    model
      .command("eval")
      .summary("loss and accuracy of a round's model on a local IDX or CSV file")
      .description("Evaluates a round's attested model (the job spec's model, fetched by the CIDs on chain) on local data: an IDX image/label pair or a CSV file with a label column.")
      .addOption(option("--images <FILE>", "IDX images (unsigned bytes, scaled to [0, 1]), with --labels"))
      .addOption(option("--labels <FILE>", "IDX labels, with --images"))
      .addOption(option("--csv <FILE>", "a CSV file: a header row, numeric columns, an integer label column (--label)"))
      .addOption(option("--label <COLUMN>", "the CSV's label column").default("label"))
      .addOption(option("--scale <HOW>", "the CSV's feature scaling, as the job's workers scale theirs: minmax, standard or none", (v) => {
        if (!(SCALES as readonly string[]).includes(v)) throw new Error(`must be one of ${SCALES.join(", ")}, got "${v}"`);
        return v as Scale;
      }).default("none"))
      .addOption(jsonOption()),
  ).action(async (o: FetchOpts & { images?: string; labels?: string; csv?: string; label: string; scale: Scale; json?: boolean }) => {
    const idx = o.images !== undefined || o.labels !== undefined;
    if (idx === (o.csv !== undefined)) throw new UsageError("give the data as --images FILE --labels FILE (IDX) or as --csv FILE [--label COLUMN]");
    if (idx && (o.images === undefined || o.labels === undefined)) throw new UsageError("IDX data needs both --images and --labels");
    const { coord, stake, fromBlock } = await reader(o);
    const rm = await roundModel(coord, o.job, o.round, fromBlock);
    const result = await withFetcher(o, coord, stake, rm, async (store) => {
      const { cid, tensors, spec } = await fetchAttested(store, coord, rm, o);
      const file = idx ? o.images! : o.csv!;
      // The loaders check the data against the model's input as they open the files; a bad file is a usage error.
      const data: Dataset = await (idx
        ? loadIdx(o.images!, o.labels!, { classes: spec.classes, input: spec.input })
        : loadCsv(o.csv!, { label: o.label, classes: spec.classes, input: spec.input, scale: o.scale })
      ).catch((e: unknown) => {
        throw e instanceof DataError ? new UsageError(e.message) : e;
      });
      const m = await evaluate(spec, new Map(tensors.map((t) => [t.name, t.data])), data);
      return { job: o.job.toString(), round: Number(rm.round), model: cid.toString(), data: file, samples: data.n, loss: m.loss, accuracy: m.accuracy };
    });
    if (o.json) return printJson(result);
    console.log(`round ${result.round} model ${result.model} on ${result.data} (${result.samples} samples): loss ${result.loss.toFixed(4)}, accuracy ${(result.accuracy * 100).toFixed(2)} %`);
  });
}
