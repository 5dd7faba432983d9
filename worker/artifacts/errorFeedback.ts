/**
 * Error feedback for compressed updates: what lossy compression (int8, top-k) did not send this round
 * is kept and added to the next round's update, so nothing is lost for good — the cumulative sent
 * update tracks the cumulative true update within one round's compression error.
 */
import { decodeArtifact, encodeArtifact, type ArtifactHeader, type Tensor } from "./container.ts";
import type { EncodeOptions } from "./encodings.ts";

export class ErrorFeedback {
  private residual = new Map<string, Float32Array>();

  /** Encodes `update` plus the carried residual; keeps the part that the encoding dropped. */
  encode(header: ArtifactHeader, update: Tensor[], options: EncodeOptions | ((t: Tensor) => EncodeOptions)): Uint8Array {
    const corrected = update.map((t) => {
      const r = this.residual.get(t.name);
      if (r && r.length !== t.data.length) {
        throw new Error(`residual for "${t.name}" has ${r.length} values, update has ${t.data.length}`);
      }
      const data = Float32Array.from(t.data, (v, i) => v + (r ? r[i]! : 0));
      return { name: t.name, shape: t.shape, data };
    });
    const bytes = encodeArtifact(header, corrected, options);
    const sent = decodeArtifact(bytes).tensors;
    for (const [i, t] of corrected.entries()) {
      const s = sent[i]!.data;
      this.residual.set(t.name, Float32Array.from(t.data, (v, j) => v - s[j]!));
    }
    return bytes;
  }

  /** The residual carried into the next update (a copy). */
  residualOf(name: string): Float32Array | undefined {
    const r = this.residual.get(name);
    return r && Float32Array.from(r);
  }

  /** Serialises the residual (f32 container, so a restarted worker resumes where it stopped). */
  save(header: ArtifactHeader): Uint8Array {
    const tensors: Tensor[] = [...this.residual].map(([name, data]) => ({ name, shape: [data.length], data }));
    return encodeArtifact(header, tensors, { encoding: "f32" });
  }

  static load(bytes: Uint8Array): ErrorFeedback {
    const ef = new ErrorFeedback();
    for (const t of decodeArtifact(bytes).tensors) ef.residual.set(t.name, t.data);
    return ef;
  }
}
