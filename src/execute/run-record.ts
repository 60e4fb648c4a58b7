// The record of one run: results/runs/<id>/run.json (params, keys, states, reasons, timings, backends,
// versions), rewritten as stages progress, and, at the end, results/<experiment>/experiment.json, the latest
// params and metrics of each experiment for comparisons. Progress notes, not commit points (the stage records
// in the store are those): no fsync.
import { existsSync, mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { StageState } from '../contracts/events.js';
import type { StoredOutput } from '../contracts/records.js';
import type { Reason } from '../contracts/reasons.js';
import { writeFileAtomic } from '../core/fsutil.js';
import { facepipeVersion, packageVersion } from '../core/version.js';
import type { Experiment } from '../plan/experiments.js';
import type { Workspace } from './workspace.js';

export interface StageResult {
  id: string;
  experiment: string;
  stage: string;
  kind: string;
  kindVersion: string;
  key?: string;
  state: StageState;
  reasons: Reason[];
  /** The reasons worded for people. */
  reason: string;
  durationMs: number;
  params: Record<string, unknown>;
  inputs: Record<string, string>;
  outputs: Record<string, StoredOutput & { path: string }>;
  metrics: Record<string, number | string>;
  error?: string;
  log?: string;
}

export type RunStatus = 'ok' | 'failed' | 'interrupted';

export function newRunId(): string {
  return new Date().toISOString().replace(/[:.]/g, '-').replace('Z', '') + '-' + randomBytes(2).toString('hex');
}

export class RunRecord {
  readonly dir: string;
  readonly path: string;
  readonly stages: StageResult[] = [];
  readonly backendsUsed: Record<string, string> = {};
  /** webgpu stages: the adapter they ran on. */
  readonly adaptersUsed: Record<string, string> = {};
  private readonly started = Date.now();

  constructor(
    private readonly ws: Workspace,
    readonly id: string,
    private readonly experiments: Experiment[],
    private readonly info: { argv: string[]; backend: string; executor: string },
  ) {
    this.dir = join(ws.runsDir, id);
    mkdirSync(join(this.dir, 'logs'), { recursive: true });
    this.path = join(this.dir, 'run.json');
  }

  logPath(stageId: string): string {
    return join(this.dir, 'logs', `${stageId.replace(/\//g, '__')}.log`);
  }

  get durationMs(): number {
    return Date.now() - this.started;
  }

  write(status: RunStatus | 'running'): void {
    const first = this.experiments[0]?.pipeline;
    const record = {
      id: this.id,
      status,
      pipeline: first?.file,
      experiments: this.experiments.map((e) => ({ name: e.name, point: e.point ?? {} })),
      argv: this.info.argv,
      configs: first?.configFiles,
      sets: first?.sets,
      executor: this.info.executor,
      backend: { requested: this.info.backend, used: this.backendsUsed, adapters: this.adaptersUsed },
      versions: {
        facepipe: facepipeVersion(),
        node: process.version,
        platform: `${process.platform}-${process.arch}`,
        tfjs: packageVersion('@tensorflow/tfjs-core'),
      },
      startedAt: new Date(this.started).toISOString(),
      endedAt: status === 'running' ? undefined : new Date().toISOString(),
      durationMs: this.durationMs,
      stages: this.stages,
    };
    writeFileAtomic(this.path, JSON.stringify(record, null, 2), { durable: false });
  }

  /** results/<experiment>/experiment.json for every experiment whose results folder exists. */
  writeExperimentSummaries(): void {
    for (const exp of this.experiments) {
      const dir = join(this.ws.resultsDir, exp.name);
      if (!existsSync(dir)) continue;
      const stages = this.stages.filter((r) => r.experiment === exp.name);
      const summary = {
        experiment: exp.name,
        pipeline: exp.pipeline.file,
        lastRun: this.id,
        point: exp.point ?? {},
        stages: Object.fromEntries(
          stages.map((s) => [
            s.stage,
            {
              state: s.state,
              key: s.key,
              params: s.params,
              metrics: s.metrics,
              outputs: Object.fromEntries(
                Object.entries(s.outputs).map(([k, v]) => [k, v.path.slice(this.ws.root.length + 1)]),
              ),
            },
          ]),
        ),
      };
      writeFileAtomic(join(dir, 'experiment.json'), JSON.stringify(summary, null, 2), { durable: false });
    }
  }
}
