// The stage graph: edges come from input references; order is topological, ties kept in file order.
import { FacepipeError, type Diagnostic } from '../core/errors.js';
import type { PipelineSpec, StageSpec } from '../load/load.js';
import { findCycles } from '../load/cycles.js';

export interface StageGraph {
  order: StageSpec[];
  byName: Map<string, StageSpec>;
  /** Stage -> the stages whose outputs it reads. */
  upstream: Map<string, string[]>;
  /** Stage -> the stages that read its outputs. */
  downstream: Map<string, string[]>;
}

export function buildGraph(p: PipelineSpec): StageGraph {
  const byName = new Map(p.stages.map((s) => [s.name, s]));
  const upstream = new Map<string, string[]>();
  const downstream = new Map<string, string[]>(p.stages.map((s) => [s.name, []]));
  for (const s of p.stages) {
    const ups = [
      ...new Set(Object.values(s.inputs).flatMap((r) => (r.from === 'stage' && byName.has(r.stage) ? [r.stage] : []))),
    ];
    upstream.set(s.name, ups);
    for (const u of ups) downstream.get(u)!.push(s.name);
  }

  const cycles = findCycles(
    p.stages.map((s) => s.name),
    upstream,
  );
  if (cycles.length) {
    const diags: Diagnostic[] = cycles.map((cycle) => {
      const first = byName.get(cycle[0])!;
      const inName = Object.entries(first.inputs).find(([, r]) => r.from === 'stage' && r.stage === cycle[1])?.[0];
      const w = (inName && first.inputWhere[inName]) || first.where;
      return {
        code: 'cycle',
        message: `the stages form a cycle: ${cycle.join(' -> ')} (each reads an output of the next)`,
        hint: 'a stage cannot depend, directly or through others, on its own outputs; remove one of these input references',
        keyPath: inName ? `stages.${first.name}.inputs.${inName}` : `stages.${first.name}`,
        ...w,
      };
    });
    throw new FacepipeError(diags);
  }

  // Kahn's algorithm, picking ready stages in file order so the order is stable.
  const indeg = new Map(p.stages.map((s) => [s.name, upstream.get(s.name)!.length]));
  const order: StageSpec[] = [];
  const done = new Set<string>();
  while (order.length < p.stages.length) {
    const next = p.stages.find((s) => !done.has(s.name) && indeg.get(s.name) === 0)!;
    order.push(next);
    done.add(next.name);
    for (const d of downstream.get(next.name)!) indeg.set(d, indeg.get(d)! - 1);
  }
  return { order, byName, upstream, downstream };
}
