/**
 * Decisions as a table: one row per update, one column per score any rule returned (in the order the
 * rules computed them), so a new rule's metrics show up in `fedstake vote evaluate` and the demo report
 * without edits here.
 */
export interface DecisionRow {
  index: number;
  worker?: string;
  accept: boolean;
  reason: string;
  metrics: Record<string, number>;
}

const fmt = (v: number | undefined) => (v === undefined ? "-" : Number.isInteger(v) ? String(v) : Math.abs(v) >= 1000 || (Math.abs(v) < 0.001 && v !== 0) ? v.toExponential(2) : v.toFixed(4));

export function decisionTable(rows: readonly DecisionRow[]): string[] {
  const keys: string[] = [];
  for (const r of rows) for (const k of Object.keys(r.metrics)) if (!keys.includes(k)) keys.push(k);
  const head = ["index", ...(rows.some((r) => r.worker) ? ["worker"] : []), ...keys, "vote", "reason"];
  const body = rows.map((r) => [String(r.index), ...(r.worker ? [r.worker] : []), ...keys.map((k) => fmt(r.metrics[k])), r.accept ? "accept" : "reject", r.reason]);
  const width = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padStart(width[i]!))).join("  ");
  return [line(head), ...body.map(line)];
}
