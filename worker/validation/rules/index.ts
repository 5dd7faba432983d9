/**
 * The acceptance rules a job spec can name, and the default list. A job spec's "validation.rules" is a
 * list of `{ "rule": NAME, ...params }`, applied in that order; omitted parameters take the rule's
 * defaults. Adding a rule: its file, and one line in RULES.
 */
import { SpecError } from "../../training/spec.ts";
import type { AcceptanceRule } from "../rule.ts";
import { dpNorm } from "./dpNorm.ts";
import { duplicate } from "./duplicate.ts";
import { heldout } from "./heldout.ts";
import { loss } from "./loss.ts";
import { neighbours } from "./neighbours.ts";
import { norm } from "./norm.ts";
import { support } from "./support.ts";
import { trust } from "./trust.ts";

const LIST: AcceptanceRule<any>[] = [duplicate, norm, heldout, trust, neighbours, support, loss];

/** Every rule a job may name: the default list's, and `dp-norm`, which a job's privacy section sets. */
export const RULES: ReadonlyMap<string, AcceptanceRule<any>> = new Map([...LIST, dpNorm].map((r) => [r.name, r]));

/**
 * A rule with its parameters, in the job spec's own form ({ "rule": "norm", "maxRatio": 4 }), so that a
 * parsed policy written back to JSON parses to itself.
 */
export interface RuleConfig {
  rule: string;
  [param: string]: unknown;
}

/** The default policy: every rule, in this order, with its defaults. */
export const DEFAULT_RULES: readonly RuleConfig[] = LIST.map((r) => ({ rule: r.name, ...r.defaults }));

/** Parses `validation.rules` (absent: the defaults); every error names the entry and field. */
export function parseRules(raw: unknown, field = "job spec: validation.rules"): RuleConfig[] {
  if (raw === undefined) return DEFAULT_RULES.map((r) => ({ ...r }));
  if (!Array.isArray(raw)) throw new SpecError(`${field} must be a list of { "rule": NAME, ...params }`);
  const seen = new Set<string>();
  return raw.map((entry, i) => {
    const f = `${field}[${i}]`;
    if (typeof entry !== "object" || entry === null) throw new SpecError(`${f} must be an object { "rule": NAME, ...params }`);
    const e = entry as Record<string, unknown>;
    const rule = RULES.get(String(e.rule));
    if (!rule) throw new SpecError(`${f}.rule must be one of ${[...RULES.keys()].map((k) => `"${k}"`).join(", ")}, got ${JSON.stringify(e.rule)}`);
    if (seen.has(rule.name)) throw new SpecError(`${f}: rule "${rule.name}" is listed twice`);
    seen.add(rule.name);
    return { rule: rule.name, ...rule.parse(e, f) };
  });
}
