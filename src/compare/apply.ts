// `facepipe exps apply NAME`: an experiment's resolved params (defaults included) as a config file, so that
// `facepipe run --config FILE` reruns exactly it (every key matches: all cached) or makes it the new default.
import { createRequire } from 'node:module';
import type { ExperimentRecord } from './load.js';

type Stringify = (value: unknown, options?: Record<string, unknown>) => string;

/** The config text: a comment naming the experiment and its run, then `stage: params` for every stage. */
export function experimentConfig(exp: ExperimentRecord, file: string): string {
  const { stringify } = createRequire(import.meta.url)('yaml') as { stringify: Stringify };
  const params = Object.fromEntries(Object.entries(exp.stages).map(([stage, s]) => [stage, s.params]));
  const point = Object.entries(exp.point)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(' ');
  const kept = exp.kept.length ? `\n# ${exp.kept.join(', ')}: params of the last complete run of those stages` : '';
  const head =
    `# facepipe exps apply ${exp.name}: the resolved params of experiment ${exp.name}` +
    `\n# (run ${exp.lastRun || 'unknown'}, pipeline ${exp.pipeline || 'unknown'})${point ? `\n# sweep point: ${point}` : ''}${kept}` +
    `\n# rerun it: facepipe run ${exp.pipeline || 'PIPELINE'} --config ${file}\n`;
  return head + stringify(params, { lineWidth: 0 });
}
