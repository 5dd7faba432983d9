/**
 * Error feedback for compressed updates: what lossy compression (f16, int8, top-k) did not send this
 * round is kept and added to the next round's update, so nothing is lost for good — the cumulative sent
 * update tracks the cumulative true update within one round's compression error.
 *
 * Immutable: `encode` returns the residual to carry on beside the bytes, so a caller that fails to
 * publish the bytes keeps the old residual and can encode the same round again.
 */
import { decodeArtifact, encodeArtifact, type ArtifactHeader, type Tensor } from "./container.ts";
import type { EncodeOptions } from "./encodings.ts";

export class ErrorFeedback {
  private readonly residual: ReadonlyMap<string, Tensor>;

  constructor(residual: readonly Tensor[] = []) {
    this.residual = new Map(residual.map((t) => [t.name, t]));
  }

  /** Encodes `update` plus the carried residual; `next` carries what the encoding dropped. */
  encode(header: ArtifactHeader, update: Tensor[], options: EncodeOptions | ((t: Tensor) => EncodeOptions)): { bytes: Uint8Array; next: ErrorFeedback } {
    for (const name of this.residual.keys()) {
      if (!update.some((t) => t.name === name)) throw new Error(`residual has tensor "${name}", the update has none`);
    }
    const corrected = update.map((t) => {
      const r = this.residual.get(t.name)?.data;
      if (r && r.length !== t.data.length) {
        throw new Error(`residual for "${t.name}" has ${r.length} values, update has ${t.data.length}`);
      }
      const data = Float32Array.from(t.data, (v, i) => v + (r ? r[i]! : 0));
      return { name: t.name, shape: [...t.shape], data };
    });
    const bytes = encodeArtifact(header, corrected, options);
    const sent = decodeArtifact(bytes).tensors;
    const next = corrected.map((t, i) => ({ name: t.name, shape: t.shape, data: Float32Array.from(t.data, (v, j) => v - sent[i]!.data[j]!) }));
    return { bytes, next: new ErrorFeedback(next) };
  }

  /** The residual carried into the next update (a copy). */
  residualOf(name: string): Float32Array | undefined {
    const r = this.residual.get(name);
    return r && Float32Array.from(r.data);
  }

  /** The residual's tensors (names and shapes: what it can be checked against). */
  get tensors(): readonly Tensor[] {
    return [...this.residual.values()];
  }

  /** Serialises the residual (f32 container: exact, so a restarted worker resumes where it stopped). */
  save(header: ArtifactHeader): Uint8Array {
    return encodeArtifact(header, [...this.residual.values()], { encoding: "f32" });
  }

  /** Reads `save`'s bytes; throws ArtifactError on bad bytes. The header is the caller's to check. */
  static load(bytes: Uint8Array): { header: ArtifactHeader; feedback: ErrorFeedback } {
    const a = decodeArtifact(bytes);
    return { header: a.header, feedback: new ErrorFeedback(a.tensors) };
  }
}
