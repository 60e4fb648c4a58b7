// facepipe run with a sweep: every point becomes an experiment (results/<pipeline>-<hash>/), all run in one
// runner so stages shared by several points (same cache key: split, pretext, ...) run once.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { FacepipeError } from '../../core/errors.js';
import { buildGraph } from '../../plan/graph.js';
import {
  expandSweep,
  parseSweepArg,
  pointName,
  pointToOverrides,
  readSweepSection,
  type SweepSpec,
  type Domain,
} from '../../plan/sweep.js';
import { loadPipeline } from '../../load/load.js';
import { locate, parseYaml, yamlLib } from '../../load/yaml.js';
import { loadKinds } from '../../stages/registry.js';
import type { Experiment } from '../../execute/runner.js';
import { runCommand, type RunCliOptions } from './run.js';
import type { Loaded } from '../context.js';

export interface SweepCliOptions extends RunCliOptions {
  sweep?: string[] | false;
  sweepFile?: string;
  samples?: string;
  sweepSeed?: string;
}

function value(s: string): unknown {
  try {
    return yamlLib().parse(s, { schema: 'core' });
  } catch {
    return s;
  }
}

export function sweepFromOptions(o: SweepCliOptions, base: Loaded): SweepSpec | undefined {
  if (o.sweep === false) return undefined;
  if (Array.isArray(o.sweep) && o.sweep.length) {
    const params: Record<string, Domain> = Object.fromEntries(o.sweep.map((s) => parseSweepArg(s, value)));
    const samples = o.samples !== undefined ? Number(o.samples) : undefined;
    return { method: samples ? 'random' : 'grid', samples, seed: Number(o.sweepSeed ?? 0), params };
  }
  if (o.sweepFile) {
    const file = resolve(base.ws.root, o.sweepFile);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      throw new FacepipeError({
        code: 'file-missing',
        file: o.sweepFile,
        message: `cannot read sweep file ${o.sweepFile}`,
      });
    }
    const { yaml, diagnostics } = parseYaml(o.sweepFile, text);
    if (!yaml) throw new FacepipeError(diagnostics);
    const inner = (yaml.value as { sweep?: unknown })?.sweep !== undefined;
    const raw = inner ? (yaml.value as { sweep: unknown }).sweep : yaml.value;
    return readSweepSection(raw, (p) => ({
      ...locate(yaml, inner ? ['sweep', ...p] : p),
      file: yaml.file,
      source: yaml.text,
    }));
  }
  if (base.pipeline.sweep) {
    const abs = resolve(base.ws.root, base.pipeline.file);
    const { yaml } = parseYaml(base.pipeline.file, readFileSync(abs, 'utf8'));
    return readSweepSection(base.pipeline.sweep, (p) =>
      yaml ? { ...locate(yaml, ['sweep', ...p]), file: yaml.file, source: yaml.text } : {},
    );
  }
  return undefined;
}

export async function sweepExperiments(o: SweepCliOptions, base: Loaded): Promise<Experiment[]> {
  const spec = sweepFromOptions(o, base);
  const baseName = o.experiment ?? base.pipeline.name;
  if (!spec) return [{ name: baseName, pipeline: base.pipeline, graph: base.graph }];
  const points = expandSweep(spec);
  const catalog = await loadKinds();
  return points.map((point) => {
    const name = pointName(baseName, point);
    const pipeline = loadPipeline({
      workspace: base.ws.root,
      pipelineFile: base.pipelineFile,
      configFiles: o.config ?? [],
      sets: o.set ?? [],
      catalog,
      extraLayers: [
        {
          label: `sweep point ${name}`,
          values: pointToOverrides(point),
          origins: Object.entries(point).map(([p, v]) => ({
            path: p.split('.'),
            text: `sweep ${p}=${JSON.stringify(v)}`,
          })),
        },
      ],
    });
    return { name, pipeline, graph: buildGraph(pipeline), point };
  });
}

export async function sweepRunCommand(pipelineArg: string | undefined, o: SweepCliOptions): Promise<number> {
  return runCommand(pipelineArg, o, async (base) => {
    const exps = await sweepExperiments(o, base);
    if (exps.length > 1 || exps[0].point)
      process.stdout.write(
        `sweep: ${exps.length} experiments\n${exps
          .map(
            (e) =>
              `  ${e.name}  ${Object.entries(e.point ?? {})
                .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
                .join(' ')}`,
          )
          .join('\n')}\n`,
      );
    return exps;
  });
}
