/**
 * Differential privacy for fedstake's updates (issue 19): the RDP accountant that turns a job's
 * (ε, δ) into a noise multiplier and tracks what each round spends, the CSPRNG Gaussian, the
 * DP-FedAvg clip-and-noise mechanism with the validators' norm bound, and the first-dense-layer
 * reconstruction attack the mechanism is measured against.
 */
export {
  DEFAULT_ORDERS,
  MAX_NOISE_MULTIPLIER,
  RdpAccountant,
  computeRdp,
  logAdd,
  logErfc,
  logSub,
  noiseForEpsilon,
  rdpEpsilon,
  rdpToEpsilon,
  type MechanismParams,
  type MechanismRun,
} from "./accountant.ts";
export { addGaussian, secureNormal, seededNormalForTestsOnly, type NormalSource } from "./gaussian.ts";
export {
  DEFAULT_FALSE_REJECTION,
  aggregateNoiseMultiplier,
  checkNoisedNorm,
  clipL2,
  l2Norm,
  noiseStd,
  noisedNormBound,
  perUpdateNoiseMultiplier,
  privatize,
  privatizeTensors,
  type NoiseMode,
  type NormBound,
  type PrivacyMechanism,
  type PrivatizeOptions,
  type PrivatizedUpdate,
} from "./mechanism.ts";
export { bestCorrelation, bestCorrelationPerImage, invertDense, invertFirstDense, pearson, type Candidate } from "./reconstruction.ts";
export { completePrivacy, epsilonSpent, parsePrivacy, perUpdateEpsilon, type PrivacyPolicy } from "./policy.ts";
