// A StageContext for calling a kind's run() directly in tests: temp dirs, recorded log/metrics.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { StageReport } from '../../src/contracts/events.js';
import type { StageContext, StageKind } from '../../src/contracts/stage-kind.js';
import { validator } from '../../src/load/ajv.js';
import { packageRoot } from '../../src/core/package-root.js';

export const repoRoot = packageRoot;

export const CMU_FACES = () => join(repoRoot(), 'data', 'cmu-faces');

/** Params with the kind's schema defaults applied (and validated) like the engine does. */
export function withDefaults<P>(kind: StageKind<P>, params: Record<string, unknown>): P {
  const copy = structuredClone(params);
  const validate = validator(kind.paramsSchema);
  if (!validate(copy)) throw new Error(`invalid params: ${JSON.stringify(validate.errors)}`);
  return copy as P;
}

export interface FakeContext<P> extends StageContext<P> {
  logs: string[];
  progressLines: string[];
  reports: StageReport[];
  recorded: Record<string, number | string>;
  cleanup(): void;
}

/** Creates output paths for the kind's outputs under a temp dir ('dir' outputs pre-created). */
export function fakeContext<P>(
  kind: StageKind<P>,
  params: Record<string, unknown>,
  inputs: Record<string, string>,
  opts: { root?: string; workDir?: string; signal?: AbortSignal; stage?: string; cores?: number } = {},
): FakeContext<P> {
  const root = opts.root ?? mkdtempSync(join(tmpdir(), `stage-${kind.name}-`));
  const full = withDefaults(kind, params);
  const outputs: Record<string, string> = {};
  for (const o of kind.outputs(full)) {
    const path = join(root, 'out', o.name);
    if (o.type === 'dir') mkdirSync(path, { recursive: true });
    else mkdirSync(dirname(path), { recursive: true });
    outputs[o.name] = path;
  }
  const workDir = opts.workDir ?? join(root, 'work');
  mkdirSync(workDir, { recursive: true });
  const logs: string[] = [];
  const progressLines: string[] = [];
  const reports: StageReport[] = [];
  const recorded: Record<string, number | string> = {};
  return {
    stage: opts.stage ?? kind.name,
    params: full,
    inputs,
    outputs,
    workDir,
    workspace: repoRoot(),
    backend: process.env.FACEPIPE_TEST_BACKEND ?? 'wasm',
    cores: opts.cores ?? 1,
    progress: (t) => {
      progressLines.push(t);
    },
    report: (r) => {
      reports.push(r);
    },
    log: (l) => {
      logs.push(l);
    },
    metrics: (v) => {
      Object.assign(recorded, v);
    },
    signal: opts.signal ?? new AbortController().signal,
    logs,
    progressLines,
    reports,
    recorded,
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
}
