/** Why an artifact was rejected. Every decoder failure is one of these, never a crash. */
export type ArtifactErrorCode =
  | "TOO_LARGE"
  | "BAD_MAGIC"
  | "BAD_VERSION"
  | "TRUNCATED"
  | "BAD_HEADER"
  | "BAD_TENSOR"
  | "BAD_ENCODING"
  | "LENGTH_MISMATCH"
  | "NON_FINITE"
  | "INDEX_OUT_OF_RANGE"
  | "TRAILING_BYTES"
  | "BAD_INPUT";

export class ArtifactError extends Error {
  override readonly name = "ArtifactError";
  readonly code: ArtifactErrorCode;
  constructor(code: ArtifactErrorCode, message: string) {
    super(`${code}: ${message}`);
    this.code = code;
  }
}
