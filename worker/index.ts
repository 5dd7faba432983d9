/**
 * fedstake as a library: `import { … } from "fedstake"`. Everything exported here is the supported API;
 * every other module of the package is internal and may change without notice.
 *
 * - **Chain**: the contracts' handles and the transaction sender ({@link attach}, {@link sendTx},
 *   {@link ChainError}, {@link Deployment}), the protocol's constants and commitment helpers
 *   ({@link Phase}, {@link phaseName}, {@link Outcome}, {@link updateCommitment}, {@link voteCommitment}).
 * - **Nodes**: a node's config ({@link readConfig}, {@link NodeConfig}), its context ({@link NodeContext})
 *   and the daemons: {@link runValidator} (with a decision hook of your own: {@link DecideFn}, given the
 *   round's {@link RoundEvaluation}), {@link runWorker}, {@link runDaemon}.
 * - **Acceptance**: the built-in decision ({@link decideRound}, {@link checkStructure}), the rule interface
 *   ({@link AcceptanceRule}, {@link Verdict}, {@link RoundView}) and the rule registry ({@link RULES}).
 * - **Artifacts**: the update/model container codec ({@link encodeArtifact}, {@link decodeArtifact}).
 * - **Storage**: {@link createStore} (an embedded Helia node or a Kubo daemon).
 * - **Training and evaluation**: {@link Trainer}, {@link localUpdate}, {@link evaluate}, the model
 *   spec ({@link ModelSpec}, {@link validateSpec}) and its ONNX graphs.
 * - **Privacy**: a job's privacy section ({@link parsePrivacy}, {@link PrivacyPolicy}, {@link epsilonSpent}),
 *   the clip-and-noise mechanism ({@link privatize}, {@link noisedNormBound}) and the RDP accountant
 *   ({@link rdpEpsilon}, {@link noiseForEpsilon}, {@link RdpAccountant}).
 *
 * The contracts' ABIs ship with the package (`artifacts/contracts/…` next to the compiled code).
 *
 * @packageDocumentation
 */

// Chain client and protocol constants.
export {
  attach,
  ChainError,
  coordinatorAbi,
  decodeRevert,
  deployProtocol,
  loadArtifact,
  revealedUpdates,
  sendTx,
  sendValue,
  type Deployment,
  type Protocol,
} from "./chain/client.ts";
export type { DeployParameters } from "./chain/deployment.ts";
export { KEY_ENV, KeyError, loadWallet, PASSWORD_ENV, writeKeystore, type KeySource } from "./chain/keys.ts";
export {
  bitmapOf,
  Codec,
  defaultJobParams,
  hasBit,
  JobStatus,
  NO_ACCURACY,
  Outcome,
  outcomeName,
  Phase,
  phaseName,
  randomSalt,
  scoreFromChain,
  scoreOnChain,
  SlashReason,
  updateCommitment,
  voteCommitment,
  type JobParams,
  type ModelScore,
  type PhaseName,
} from "./chain/protocol.ts";

// Node context, config and roles.
export { readConfig, type DataConfig, type NodeConfig } from "./node/config.ts";
export { NodeContext, type JobConfigView, type LogTo, type RoundResultView } from "./node/context.ts";
export { EXIT_UNCAUGHT, runDaemon, runValidator, runWorker, type DaemonHooks } from "./node/daemon.ts";
export type { ValidatorHooks } from "./node/validatorRole.ts";
export type { WorkerHooks } from "./node/workerRole.ts";
export type { Compression, JobSpec, ReferenceRecipe, ValidationPolicy } from "./node/jobSpec.ts";
export type { NodeState, RoundState, StateFile } from "./node/state.ts";
export type { AggregationKind, AggregationPolicy } from "./aggregation/index.ts";

// The acceptance decision and its rules.
export { checkStructure, decideRound, type Decision, type Evaluation, type Policy, type Revealed } from "./validation/validate.ts";
export {
  cosine,
  dot,
  l2,
  mean,
  median,
  numberParams,
  round4,
  type AcceptanceRule,
  type Candidate,
  type HeldOut,
  type NumberParam,
  type PastDelta,
  type RoundView,
  type Verdict,
} from "./validation/rule.ts";
export { DEFAULT_RULES, parseRules, RULES, type RuleConfig } from "./validation/rules/index.ts";
export { acceptedIndices, type ChainTime, type DecideFn, type RoundEvaluation, type UpdateEvaluation } from "./validation/roundEvaluation.ts";

// The artifact codec.
export * from "./artifacts/index.ts";
export type { EncodingParams } from "./artifacts/encodings.ts";

// Storage.
export { createStore, type StorageConfig, type StoreSite } from "./storage/factory.ts";
export { cidFromChain, cidToChain, StoreError, type ArtifactStore, type Dialer, type GetOptions, type NodeStore, type StoreErrorCode } from "./storage/store.ts";

// Training and evaluation.
export { createSession, DeviceUnavailableError, evaluate, localUpdate, Trainer, type Device, type TrainOptions } from "./training/trainer.ts";
export { evalModel, gradientModel, inferenceModel, initParams, paramsOf, trainModel, type Optimizer, type Param } from "./training/model.ts";
export { SpecError, validateSpec, type Layer, type Loss, type ModelSpec } from "./training/spec.ts";
export { applyDelta, deltaOf, flatten, unflatten, zerosLike } from "./training/delta.ts";
export type { Dataset } from "./data/dataset.ts";

// Differential privacy.
export { noiseForEpsilon, rdpEpsilon, RdpAccountant } from "./privacy/accountant.ts";
export { checkNoisedNorm, noisedNormBound, noiseStd, privatize, privatizeTensors, type NoiseMode, type PrivacyMechanism } from "./privacy/mechanism.ts";
export { completePrivacy, epsilonSpent, parsePrivacy, perUpdateEpsilon, type PrivacyPolicy } from "./privacy/policy.ts";
