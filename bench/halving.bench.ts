// npm run bench:halving — a successive-halving sweep next to the same grid trained fully, on the bundled faces:
// total Triarchy epochs trained, wall time, and whether both pick the same best point (by the validation metric
// that halving ranks by; the test figures of each pick are printed, never used to choose).
//   npm run bench:halving                  9 points (lr x margin), rungs 10 -> 30 -> 90 epochs, eta 3
//   npm run bench:halving -- --json        the same figures as JSON
//   npm run bench:halving -- --tiny        the tiny config, rungs 1 -> 2 -> 4 (checks the script, figures mean nothing)
// Both arms start from one cached split and pretext (run once, copied), so they differ only in how they sweep.
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const cli = join(repo, 'dist/src/cli/main.js');
const argv = process.argv.slice(2);
const arg = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const json = argv.includes('--json');
const tiny = argv.includes('--tiny');

const SWEEP = ['triarchy.optimizer.lr=0.0003,0.001,0.003', 'triarchy.loss.margin=null,0.2,0.5'];
const MIN = Number(arg('min-epochs') ?? (tiny ? 1 : 10));
const MAX = Number(arg('max-epochs') ?? (tiny ? 4 : 90));
const ETA = Number(arg('eta') ?? 3);
const METRIC = 'triarchy.val_auc';
// The fast setting: the default config (56 px, width/depth 0.5) with milestones inside max_epochs.
const CONFIG = tiny
  ? 'triarchy:\n  validate_every: 1\n'
  : `triarchy:\n  optimizer: { milestones: [${Math.round(MAX * 0.67)}, ${Math.round(MAX * 0.89)}] }\n  validate_every: 10\n`;
const BASE = [
  '--config',
  tiny ? 'configs/tiny.yaml' : 'configs/default.yaml',
  '--config',
  'configs/bench-halving.yaml',
];

interface Event {
  type: string;
  experiment?: string;
  point?: Record<string, unknown>;
  value?: number;
}

function cliRun(ws: string, args: string[]): Promise<{ ms: number; events: Event[] }> {
  return new Promise((done, fail) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, [cli, ...args, '--backend', 'wasm', '--progress', 'json'], {
      cwd: ws,
      env: { ...process.env, CI: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', fail);
    child.on('close', (code) => {
      if (code !== 0) return fail(new Error(`facepipe ${args.join(' ')} exited ${code}: ${err.slice(-800)}`));
      const events = out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Event);
      done({ ms: Date.now() - t0, events });
    });
  });
}

interface RunStage {
  stage: string;
  state: string;
  key?: string;
  params: { epochs?: number };
  continuedFrom?: { epoch: number };
  computed?: { durationMs: number };
}

/** Triarchy epochs this arm trained (each key once: epochs minus the cached epoch it continued from), and their time. */
function trained(ws: string, before: Set<string>): { epochs: number; trainMs: number; runs: number } {
  const seen = new Set<string>();
  let epochs = 0;
  let trainMs = 0;
  const runs = readdirSync(join(ws, 'results/runs')).filter((r) => !before.has(r));
  for (const r of runs) {
    const rec = JSON.parse(readFileSync(join(ws, 'results/runs', r, 'run.json'), 'utf8')) as { stages: RunStage[] };
    for (const s of rec.stages) {
      if (s.stage !== 'triarchy' || s.state !== 'done' || !s.key || seen.has(s.key)) continue;
      seen.add(s.key);
      epochs += (s.params.epochs ?? 0) - (s.continuedFrom?.epoch ?? 0);
      trainMs += s.computed?.durationMs ?? 0;
    }
  }
  return { epochs, trainMs, runs: runs.length };
}

function testAuc(ws: string, exp: string): number | undefined {
  try {
    const e = JSON.parse(readFileSync(join(ws, 'results', exp, 'experiment.json'), 'utf8')) as {
      stages: { evaluate?: { metrics: { auc?: number } } };
    };
    return e.stages.evaluate?.metrics.auc;
  } catch {
    return undefined;
  }
}

interface Row {
  method: string;
  points: number;
  epochsTrained: number;
  wallSeconds: number;
  triarchySeconds: number;
  runs: number;
  best?: string;
  bestPoint?: Record<string, unknown>;
  bestValAuc?: number;
  bestTestAuc?: number;
  /** Halving: each point's standing (where it stopped and why), by experiment name. */
  standings?: Record<string, string>;
}

/** Each experiment's halving standing in words (experiment.json `sweep.why`). */
function standingsOf(ws: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(join(ws, 'results'))) {
    try {
      const e = JSON.parse(readFileSync(join(ws, 'results', name, 'experiment.json'), 'utf8')) as {
        sweep?: { why?: string };
      };
      if (e.sweep?.why) out[name] = e.sweep.why;
    } catch {
      /* runs/, or no summary */
    }
  }
  return out;
}

async function arm(prep: string, method: 'grid' | 'halving'): Promise<Row> {
  const ws = mkdtempSync(join(tmpdir(), `fp-bench-${method}-`));
  try {
    cpSync(prep, ws, { recursive: true });
    const before = new Set(readdirSync(join(ws, 'results/runs')));
    const sweep = SWEEP.flatMap((s) => ['--sweep', s]);
    const args =
      method === 'grid'
        ? ['run', ...BASE, ...sweep, '--set', `triarchy.epochs=${MAX}`, '--metric', `${METRIC}:max`]
        : ['run', ...BASE, ...sweep, '--sweep-method', 'halving', '--min-epochs', `${MIN}`, '--max-epochs', `${MAX}`];
    if (method === 'halving') args.push('--eta', `${ETA}`, '--metric', `${METRIC}:max`);
    if (!json) process.stdout.write(`  ${method}: running (${args.slice(1).join(' ')})...\n`);
    const r = await cliRun(ws, args);
    const best = r.events.find((e) => e.type === 'sweep-best');
    const t = trained(ws, before);
    return {
      method,
      points: 9,
      epochsTrained: t.epochs,
      wallSeconds: Math.round(r.ms / 100) / 10,
      triarchySeconds: Math.round(t.trainMs / 100) / 10,
      runs: t.runs,
      best: best?.experiment,
      bestPoint: best?.point,
      bestValAuc: best?.value,
      bestTestAuc: best?.experiment ? testAuc(ws, best.experiment) : undefined,
      ...(method === 'halving' ? { standings: standingsOf(ws) } : {}),
    };
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const prep = mkdtempSync(join(tmpdir(), 'fp-bench-prep-'));
  try {
    for (const d of ['pipelines', 'configs', 'data/cmu-faces'])
      cpSync(join(repo, d), join(prep, d), { recursive: true });
    writeFileSync(join(prep, 'configs/bench-halving.yaml'), CONFIG);
    if (!json) process.stdout.write('  split and pretext, once for both arms...\n');
    await cliRun(prep, ['run', ...BASE, '--until', 'pretext']);
    const load = loadavg()[0];
    const rows = [await arm(prep, 'halving'), await arm(prep, 'grid')];
    const same = !!rows[0].best && rows[0].best === rows[1].best;
    // Point names are hashes of the point: the grid's best has the same name in the halving sweep.
    const gridBestInHalving = rows[1].best ? rows[0].standings?.[rows[1].best] : undefined;
    const machine = { loadAverage: Number(load.toFixed(2)), cores: availableParallelism() };
    const setup = { sweep: SWEEP, minEpochs: MIN, maxEpochs: MAX, eta: ETA, metric: METRIC, config: CONFIG, tiny };
    if (json) {
      console.log(JSON.stringify({ machine, setup, rows, sameBest: same, gridBestInHalving }, null, 2));
      return;
    }
    console.log(
      `\n9-point sweep (${SWEEP.join(' x ')}) on the bundled faces${tiny ? ' (tiny config)' : ''}; halving ${MIN} -> ${MAX} epochs, eta ${ETA}, ranked by ${METRIC}; grid: every point to ${MAX} epochs`,
    );
    console.log(
      `  load average ${load.toFixed(2)} on ${machine.cores} cores${load > machine.cores / 2 ? ' (busy machine: times are provisional)' : ''}`,
    );
    console.log(
      '| method | points | Triarchy epochs trained | wall s | Triarchy s | best point (by val_auc) | val_auc | test auc |',
    );
    console.log('|---|---|---|---|---|---|---|---|');
    for (const r of rows) {
      const point = Object.entries(r.bestPoint ?? {})
        .map(([k, v]) => `${k.split('.').at(-1)}=${JSON.stringify(v)}`)
        .join(' ');
      console.log(
        `| ${r.method} | ${r.points} | ${r.epochsTrained} | ${r.wallSeconds} | ${r.triarchySeconds} | ${r.best ?? '-'} ${point} | ${r.bestValAuc ?? '-'} | ${r.bestTestAuc ?? '-'} |`,
      );
    }
    console.log(
      `\nsame best point: ${same ? 'yes' : `no (the grid's best in the halving sweep: ${gridBestInHalving ?? '?'})`}; halving trained ${((100 * rows[0].epochsTrained) / Math.max(1, rows[1].epochsTrained)).toFixed(0)}% of the grid's epochs in ${((100 * rows[0].wallSeconds) / Math.max(1, rows[1].wallSeconds)).toFixed(0)}% of its wall time`,
    );
  } finally {
    rmSync(prep, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
