/**
 * Data loading that catches mistakes (worker/data/csv.ts, idx.ts, check.ts): a missing CSV header, a
 * label that is not an integer, features or images that do not fit the model, and local feature scaling.
 */
import { expect } from "chai";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkImageSize, checkInputSize, inputSize } from "../../worker/data/check.ts";
import { loadCsv, scaleFeatures, type CsvOptions } from "../../worker/data/csv.ts";
import { DataError } from "../../worker/data/dataset.ts";
import { loadIdx } from "../../worker/data/idx.ts";

/** The DataError message `p` rejects with (fails the test when it resolves or throws anything else). */
async function rejection(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e).to.be.instanceOf(DataError);
    return (e as Error).message;
  }
  expect.fail("expected a DataError");
}

function thrown(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).to.be.instanceOf(DataError);
    return (e as Error).message;
  }
  expect.fail("expected a DataError");
}

/** An unsigned-byte IDX file: magic 0x000008NN, big-endian dims, then the bytes. */
function idx(dims: number[], data: number[]): Uint8Array {
  const head = new Uint8Array(4 + 4 * dims.length);
  const view = new DataView(head.buffer);
  head.set([0, 0, 8, dims.length]);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  return Uint8Array.from([...head, ...data]);
}

describe("data loading that catches mistakes", function () {
  const dir = mkdtempSync(join(tmpdir(), "fedstake-data-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "d.csv");
  const csv = (text: string, opts: Partial<CsvOptions> = {}) => {
    writeFileSync(file, text);
    return loadCsv(file, { label: "y", classes: 3, ...opts });
  };

  describe("CSV header", function () {
    it("refuses a header-less file (all-numeric first line) and names the file", async function () {
      const msg = await rejection(csv("1,2,0\n3,4,2\n"));
      expect(msg).to.include(file);
      expect(msg).to.match(/first line "1,2,0" is all numbers: the header row is missing/);
    });

    it("refuses it even when the label name is a number that the first line contains", async function () {
      // Without the check, column "0" (the third) would be taken as the label and row 1 lost.
      const msg = await rejection(csv("5,1,0\n6,2,1\n", { label: "0" }));
      expect(msg).to.match(/d\.csv: the first line .* header row is missing/);
    });

    it("refuses a header-less single-line file as a missing header, not as too short", async function () {
      expect(await rejection(csv("1.5,2,0\n"))).to.match(/header row is missing/);
    });

    it("accepts headers with some numeric names, and a byte-order mark", async function () {
      const d = await csv("\uFEFFy,1,2\n0,3,4\n");
      expect([...d.labels!]).to.deep.equal([0]);
      expect([...d.x]).to.deep.equal([3, 4]);
    });

    it("refuses a label column named twice", async function () {
      expect(await rejection(csv("y,a,y\n0,1,2\n"))).to.match(/d\.csv: the header names "y" more than once/);
    });
  });

  describe("CSV labels", function () {
    it("a fractional label is 'not an integer', naming file, line, column and value", async function () {
      const msg = await rejection(csv("a,b,y\n1,2,0\n3,4,1.5\n"));
      expect(msg).to.include(`${file}:3: column "y": label "1.5" is not an integer`);
      expect(msg).not.to.match(/out of range/);
    });

    it("a negative fraction is 'not an integer' too; an integer outside the classes is 'out of range'", async function () {
      expect(await rejection(csv("a,y\n1,-0.5\n"))).to.match(/d\.csv:2: column "y": label "-0\.5" is not an integer/);
      const out = await rejection(csv("a,y\n1,-1\n"));
      expect(out).to.match(/d\.csv:2: label -1 is out of range 0\.\.2/);
      expect(out).not.to.match(/not an integer/);
      expect(await rejection(csv("a,y\n1,3\n"))).to.match(/d\.csv:2: label 3 is out of range 0\.\.2/);
    });

    it("an integer written as 2.0 is an integer", async function () {
      expect([...(await csv("a,y\n1,2.0\n")).labels!]).to.deep.equal([2]);
    });
  });

  describe("CSV scaling (statistics of the file itself)", function () {
    const text = "a,k,b,y\n1,7,10,0\n3,7,20,1\n5,7,60,2\n";

    it("none is the default: values as written", async function () {
      expect([...(await csv(text)).x]).to.deep.equal([1, 7, 10, 3, 7, 20, 5, 7, 60]);
      expect([...(await csv(text, { scale: "none" })).x]).to.deep.equal([1, 7, 10, 3, 7, 20, 5, 7, 60]);
    });

    it("minmax maps each column to [0, 1]; a constant column becomes 0", async function () {
      const d = await csv(text, { scale: "minmax" });
      const want = [0, 0, 0, 0.5, 0, 0.2, 1, 0, 1];
      // (plain comparison: the Hardhat chai plugin turns closeTo into a bigint matcher)
      [...d.x].forEach((v, i) => expect(Math.abs(v - want[i]!), `value ${i}`).to.be.below(1e-6));
      expect([...d.labels!]).to.deep.equal([0, 1, 2]);
    });

    it("standard gives each column mean 0 and (population) std 1; a constant column becomes 0", async function () {
      const d = await csv(text, { scale: "standard" });
      // a: mean 3, std √(8/3); b: mean 30, std √(1400/3)
      const sa = Math.sqrt(8 / 3);
      const sb = Math.sqrt(1400 / 3);
      const want = [-2 / sa, 0, -20 / sb, 0, 0, -10 / sb, 2 / sa, 0, 30 / sb];
      [...d.x].forEach((v, i) => expect(Math.abs(v - want[i]!), `value ${i}`).to.be.below(1e-5));
      for (const v of d.x) expect(Number.isFinite(v)).to.equal(true);
    });

    it("scaleFeatures: a constant column is exactly 0 (divisor 0), in both scalings", function () {
      const x = new Float32Array(7).fill(0.1);
      const stats = scaleFeatures(x, 7, 1, "standard");
      expect([...x]).to.deep.equal([0, 0, 0, 0, 0, 0, 0]);
      expect(stats.divisor[0]).to.equal(0);
      const y = new Float32Array(3).fill(-4);
      scaleFeatures(y, 3, 1, "minmax");
      expect([...y]).to.deep.equal([0, 0, 0]);
    });

    it("refuses an unknown scale", async function () {
      const msg = await rejection(csv(text, { scale: "zscore" as CsvOptions["scale"] }));
      expect(msg).to.match(/d\.csv: scale must be "minmax", "standard", "none", got "zscore"/);
    });
  });

  describe("input size against the model", function () {
    it("inputSize is the product of spec.input", function () {
      expect(inputSize({ input: [784] })).to.equal(784);
      expect(inputSize({ input: [1, 28, 28] })).to.equal(784);
    });

    it("checkInputSize names the source, the number found and the number the model takes", function () {
      expect(() => checkInputSize({ features: 784 }, { input: [1, 28, 28] }, "x")).not.to.throw();
      const msg = thrown(() => checkInputSize({ features: 3 }, { input: [4] }, "data/train.csv"));
      expect(msg).to.equal("data/train.csv: 3 values per sample, the model takes 4 (spec.input [4])");
    });

    it("loadCsv with input: a feature count that differs from the model's input fails before the rows are read", async function () {
      // Line 3 is bad too: the size check names the real mistake first.
      const msg = await rejection(csv("a,b,y\n1,2,0\nx\n", { input: [3] }));
      expect(msg).to.include(file);
      expect(msg).to.match(/2 feature columns besides "y"\): 2 values per sample, the model takes 3 \(spec\.input \[3\]\)/);
      expect((await csv("a,b,y\n1,2,0\n", { input: [2] })).features).to.equal(2);
    });

    describe("IDX", function () {
      const images = join(dir, "images.idx3");
      const labels = join(dir, "labels.idx1");
      // Two 2×3 images.
      writeFileSync(images, idx([2, 2, 3], [0, 51, 102, 153, 204, 255, 255, 0, 0, 0, 0, 0]));
      writeFileSync(labels, idx([2], [1, 0]));

      it("loads when the image size matches (dense [6] or conv [1, 2, 3])", async function () {
        const d = await loadIdx(images, labels, { classes: 2, input: [6] });
        expect(d.features).to.equal(6);
        expect(d.x[5]).to.equal(1);
        expect((await loadIdx(images, labels, { classes: 2, input: [1, 2, 3] })).n).to.equal(2);
        expect((await loadIdx(images, labels, { classes: 2 })).n).to.equal(2);
      });

      it("refuses images of another size, naming the file, rows×cols and the model's input", async function () {
        const msg = await rejection(loadIdx(images, labels, { classes: 2, input: [784] }));
        expect(msg).to.equal(`${images}: images are 2×3 = 6 values, the model takes 784 (spec.input [784])`);
      });

      it("refuses a conv input of the same size but another shape", async function () {
        const msg = await rejection(loadIdx(images, labels, { classes: 2, input: [1, 3, 2] }));
        expect(msg).to.equal(`${images}: images are 2×3 (one channel), the model takes 1×3×2 (spec.input [1,3,2])`);
        expect(thrown(() => checkImageSize([5, 28, 28], { input: [4, 14, 14] }, "m.idx"))).to.match(/m\.idx: images are 28×28 \(one channel\), the model takes 4×14×14/);
        expect(() => checkImageSize([5, 28, 28], { input: [1, 28, 28] }, "m.idx")).not.to.throw();
      });
    });
  });
});
