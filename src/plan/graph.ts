// The stage graph: edges come from input references; order is topological, ties kept in file order. The loader
// has already rejected cycles and dangling references (src/load/references.ts).
import type { PipelineSpec, StageSpec } from '../load/load.js';
import { upstreamOf } from '../load/references.js';

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
  const upstream = upstreamOf(p.stages);
  const downstream = new Map<string, string[]>(p.stages.map((s) => [s.name, []]));
  for (const [s, ups] of upstream) for (const u of ups) downstream.get(u)!.push(s);
  // Kahn's algorithm, picking ready stages in file order so the order is stable.
  const indeg = new Map(p.stages.map((s) => [s.name, upstream.get(s.name)!.length]));
  const order: StageSpec[] = [];
  const done = new Set<string>();
  while (order.length < p.stages.length) {
    const next = p.stages.find((s) => !done.has(s.name) && indeg.get(s.name) === 0);
    if (!next) throw new Error(`the stage graph of ${p.file} has a cycle (the loader should have reported it)`);
    order.push(next);
    done.add(next.name);
    for (const d of downstream.get(next.name)!) indeg.set(d, indeg.get(d)! - 1);
  }
  return { order, byName, upstream, downstream };
}
