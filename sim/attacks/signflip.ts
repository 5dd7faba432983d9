/** `signflip`: submits its honest update sign-flipped and scaled (−4 × own): gradient ascent, boosted. */
import type { Attack } from "./attack.ts";
import { scaledAttack } from "./scaled.ts";

/** How much `signflip` scales its negated update by (the demo's malicious worker has always used 4). */
export const SIGNFLIP_SCALE = 4;

export const signflip: Attack = scaledAttack("signflip", -SIGNFLIP_SCALE, `sign-flipped ×${SIGNFLIP_SCALE} updates`);
