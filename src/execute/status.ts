// What a run would do, without running anything: for each stage, cached or will run, and why.
import { diffParams, explainRerun, keyMaterial, stageKey, type KeyMaterial } from '../plan/keys.js';
import { readFileSync } from 'node:fs';
import { inputDigests, qualifiedId, type Experiment } from './runner.js';
import type { StoredOutput } from './store.js';
import type { Workspace } from './workspace.js';

export interface StagePlan {
  id: string;
  stage: string;
  /** 'cached', 'run', or 'maybe' (depends on whether an upstream rerun changes its outputs). */
  action: 'cached' | 'run' | 'maybe';
  reason: string;
  key?: string;
}

export async function planExperiments(ws: Workspace, experiments: Experiment[], force: string[]): Promise<StagePlan[]> {
  const many = experiments.length > 1;
  const plans: StagePlan[] = [];
  for (const exp of experiments) {
    let last: Record<string, { key: string; material: KeyMaterial }> = {};
    try {
      last = JSON.parse(readFileSync(ws.lastStatePath(exp.name), 'utf8'));
    } catch {
      /* none */
    }
    const known = new Map<string, Record<string, StoredOutput & { path: string }>>();
    const pendingUp = new Map<string, string>();
    for (const s of exp.graph.order) {
      const id = qualifiedId(exp, s.name, many);
      const ups = exp.graph.upstream.get(s.name) ?? [];
      const unknownUps = ups.filter((u) => !known.has(u));
      const forced = force.includes(s.name) || force.includes(id);
      if (unknownUps.length) {
        const prev = last[s.name]?.material;
        const own: string[] = [];
        if (!prev) own.push('never run');
        else {
          if (prev.kindVersion !== s.kind.version)
            own.push(`kind version changed: ${prev.kindVersion} -> ${s.kind.version}`);
          const pd = diffParams(s.name, prev.params, s.params);
          if (pd.length) own.push(`params changed: ${pd.join(', ')}`);
        }
        if (forced) own.unshift('forced (--force)');
        const upText = unknownUps.map((u) => pendingUp.get(u) ?? u).join(', ');
        plans.push(
          own.length
            ? { id, stage: s.name, action: 'run', reason: `${own.join('; ')}` }
            : {
                id,
                stage: s.name,
                action: 'maybe',
                reason: `input may change: ${upText} will rerun (stays cached if its outputs are unchanged)`,
              },
        );
        pendingUp.set(s.name, s.name);
        continue;
      }
      const inp = await inputDigests(ws, s, (n) => known.get(n));
      const material = keyMaterial(s, inp!.digests);
      const key = stageKey(material);
      const rec = ws.store.readRecord(key);
      if (rec && !forced && (await ws.store.verifyRecord(rec))) {
        const outs: Record<string, StoredOutput & { path: string }> = {};
        for (const [n, o] of Object.entries(rec.outputs)) outs[n] = { ...o, path: ws.outputPath(exp.name, s.name, n) };
        known.set(s.name, outs);
        plans.push({ id, stage: s.name, action: 'cached', reason: 'cached', key });
      } else {
        const reason = forced
          ? 'forced (--force)'
          : rec
            ? 'cached output missing or corrupt'
            : explainRerun(s, material, last[s.name]?.material, inp!.labels);
        plans.push({ id, stage: s.name, action: 'run', reason, key });
      }
    }
  }
  ws.digests.save();
  return plans;
}
