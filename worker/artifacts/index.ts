export { ArtifactError, type ArtifactErrorCode } from "./errors.ts";
export { Encoding, type EncodeOptions, type EncodingName } from "./encodings.ts";
export {
  decodeArtifact,
  decodeHeader,
  encodeArtifact,
  numelOf,
  type Artifact,
  type ArtifactHeader,
  type ArtifactKind,
  type DecodeLimits,
  type Tensor,
  type TensorInfo,
} from "./container.ts";
export { ErrorFeedback } from "./errorFeedback.ts";
