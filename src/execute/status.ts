// What a run would do, without running anything: for each stage, cached, will run or may run, and why. It asks
// the same decision (plan/decide.ts) as the runner; stages below one that will rerun "may run" (early cutoff).
import type { Reason } from '../contracts/reasons.js';
import { decide, pickStages, type Selection } from '../plan/decide.js';
import { keyMaterial } from '../plan/keys.js';
import { formatReasons } from '../plan/reasons.js';
import { inputDigests, type PlacedOutputs } from './inputs.js';
import { readLastState } from './last-state.js';
import { qualifiedId, type Experiment } from './runner.js';
import type { Workspace } from './workspace.js';

export interface StagePlan {
  id: string;
  experiment: string;
  stage: string;
  /** 'cached', 'run', or 'maybe' (depends on whether an upstream rerun changes its outputs). */
  action: 'cached' | 'run' | 'maybe';
  reasons: Reason[];
  reason: string;
  key?: string;
  /** A cached stage's figures (a halving sweep ranks cached rungs by them). */
  metrics?: Record<string, number | string>;
}

async function planExperiment(
  ws: Workspace,
  exp: Experiment,
  many: boolean,
  sel: Selection,
  warn: (message: string) => void,
): Promise<StagePlan[]> {
  const last = readLastState(ws, exp.name, warn);
  const known = new Map<string, PlacedOutputs>();
  const plans: StagePlan[] = [];
  const pick = pickStages(exp.graph, (s) => qualifiedId(exp, s, many), sel);
  for (const s of pick.stages) {
    const id = qualifiedId(exp, s.name, many);
    const rerunning = (exp.graph.upstream.get(s.name) ?? []).filter((u) => !known.has(u));
    const inputs = rerunning.length ? undefined : await inputDigests(ws, s, (n) => known.get(n));
    const d = await decide({
      stage: s,
      material: inputs && keyMaterial(s, inputs.digests),
      last: last[s.name]?.material,
      forced: pick.forced.get(s.name),
      inputLabels: inputs?.labels ?? {},
      rerunningUpstream: rerunning,
      cache: ws.store,
    });
    if (d.action === 'cached') {
      const outs: PlacedOutputs = {};
      for (const [n, o] of Object.entries(d.record.outputs))
        outs[n] = { ...o, path: ws.outputPath(exp.name, s.name, n) };
      known.set(s.name, outs);
      plans.push({
        id,
        experiment: exp.name,
        stage: s.name,
        action: 'cached',
        reasons: [],
        reason: 'cached',
        key: d.key,
        metrics: d.record.metrics,
      });
      continue;
    }
    const action = d.action === 'maybe' ? 'maybe' : 'run';
    const key = d.action === 'maybe' ? undefined : d.key;
    plans.push({
      id,
      experiment: exp.name,
      stage: s.name,
      action,
      reasons: d.reasons,
      reason: formatReasons(d.reasons),
      key,
    });
  }
  return plans;
}

export async function planExperiments(
  ws: Workspace,
  experiments: Experiment[],
  sel: Selection,
  warn: (message: string) => void = () => {},
): Promise<StagePlan[]> {
  const plans: StagePlan[] = [];
  for (const exp of experiments) plans.push(...(await planExperiment(ws, exp, experiments.length > 1, sel, warn)));
  ws.digests.save();
  return plans;
}
