#!/usr/bin/env node
// facepipe command line. Commands load their modules lazily, so `status` on a cached pipeline stays fast
// and nothing here loads TensorFlow.js unless a stage that needs it runs (in its own process).
import { Command, Option } from 'commander';
import { formatError, FacepipeError } from '../core/errors.js';
import type { CommonOptions } from './context.js';
import type { EmbeddingOptions } from './commands/embed.js';
import type { ApplyOptions, DiffOptions, ExpsOptions } from './commands/exps.js';
import type { GcOptions } from './commands/gc.js';
import type { ReportOptions } from './commands/report.js';
import type { SweepCliOptions } from './commands/sweep.js';
import type { VerifyOptions } from './commands/verify.js';
import type { WatchOptions } from './commands/watch.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** Each command's action sets the process's exit code through this. */
type SetCode = (code: number) => void;

const common = (c: Command) =>
  c
    .argument('[pipeline]', 'pipeline YAML (default: pipelines/face-verification.yaml)')
    .option('-c, --config <file>', 'config YAML with param overrides (repeatable, later wins)', collect)
    .option('-s, --set <key=value>', 'override one param, e.g. triarchy.loss.margin=0.3 (repeatable)', collect)
    .option('-w, --workspace <dir>', 'workspace root (default: current folder)')
    .option('-e, --experiment <name>', 'experiment name; outputs go to results/<name>/ (default: the pipeline name)');

/** run, status, validate, watch: the commands that load a pipeline. */
function pipelineCommands(program: Command, setCode: SetCode): void {
  common(program.command('run').description('run the pipeline; cached stages are reused'))
    .option('-n, --dry-run', 'say what would run and why, run nothing')
    .option('-u, --until <stage>', 'run only this stage and what it needs (repeatable; a,b: several targets)', collect)
    .option('-f, --force <stage>', "rerun this stage even if cached (repeatable; 'all': every stage)", collect)
    .option('-F, --force-all', 'rerun every stage (as --force all)')
    .option('-R, --force-downstream <stage>', 'rerun this stage and every stage below it (repeatable)', collect)
    .option('-j, --jobs <n>', 'independent stages run at once (default 1; on Slurm: 1000 jobs queued at once)')
    .option('-b, --backend <name>', 'TensorFlow.js backend: auto, tensorflow, webgpu, wasm, cpu')
    .option('--executor <name>', "where stages run: local (default) or slurm (or the config's executor.type)")
    .addOption(
      new Option('--progress <mode>', 'progress display').choices(['auto', 'tty', 'plain', 'json']).default('auto'),
    )
    .option('-v, --verbose', 'plain mode: print stage output lines too')
    .option('--no-wait', 'fail instead of waiting when another run holds the workspace')
    .option(
      '--sweep <key=values>',
      'sweep a param: stage.key=v1,v2 | range(a,b,step) | uniform(a,b) | loguniform(a,b) (repeatable; grid)',
      collect,
    )
    .option('--no-sweep', "ignore the pipeline's sweep: section; run the base experiment only")
    .option('--sweep-file <file>', 'YAML sweep definition (method, samples, seed, params; halving settings)')
    .option(
      '--sweep-method <m>',
      'grid (default), random (with --samples), halving: successive halving over epochs (--min-epochs, --max-epochs, --eta; --metric ranks), or hyperband: brackets of halving over random points',
    )
    .option('--min-epochs <n>', 'halving: epochs of the first rung')
    .option('--max-epochs <n>', 'halving: epochs of the last rung')
    .option('--eta <x>', 'halving: keep the best 1/eta at each rung (default 3)')
    .option('--samples <n>', 'random sweep: sample N points instead of the full grid')
    .option('--sweep-seed <n>', 'random sweep: seed of the sample', '0')
    .option('--max-points <n>', 'refuse a sweep of more points than this (default: 10000)')
    .option(
      '--seeds <n>',
      'run every point N times, the seed params set to 0..N-1 together (exps and report show mean ± std)',
    )
    .option('--seed-stages <list>', 'the stages whose seed --seeds sets (default: every stage with a seed)', collect)
    .option('--max-memory <MB>', 'memory budget for stages running at once (default: 75% of RAM)')
    .option(
      '--metric <name>',
      'a sweep names its best point on this metric, e.g. evaluate.auc or evaluate.eer:min (halving: ranks by it, e.g. triarchy.val_auc)',
    )
    .action(async (pipeline: string | undefined, opts: SweepCliOptions) => {
      const { sweepRunCommand } = await import('./commands/sweep.js');
      setCode(await sweepRunCommand(pipeline, opts));
    });

  common(program.command('status').description('for each stage: cached or will run, and why; queued and running jobs'))
    .option('-u, --until <stage>', 'as run --until', collect)
    .option('-f, --force <stage>', 'as run --force', collect)
    .option('-F, --force-all', 'as run --force-all')
    .option('-R, --force-downstream <stage>', 'as run --force-downstream', collect)
    .option('--sweep <key=values>', 'as run --sweep: the status of every point', collect)
    .option('--no-sweep', "ignore the pipeline's sweep: section")
    .option('--sweep-file <file>', 'as run --sweep-file')
    .option('--sweep-method <m>', 'as run --sweep-method: a halving sweep shows each rung the cache can already rank')
    .option('--min-epochs <n>', 'as run --min-epochs')
    .option('--max-epochs <n>', 'as run --max-epochs')
    .option('--eta <x>', 'as run --eta')
    .option('--metric <name>', 'as run --metric (halving: the metric that ranks)')
    .option('--samples <n>', 'as run --samples')
    .option('--sweep-seed <n>', 'as run --sweep-seed', '0')
    .option('--max-points <n>', 'as run --max-points')
    .option('--seeds <n>', 'as run --seeds')
    .option('--seed-stages <list>', 'as run --seed-stages', collect)
    .action(async (pipeline: string | undefined, opts: SweepCliOptions) => {
      const { sweepRunCommand } = await import('./commands/sweep.js');
      setCode(await sweepRunCommand(pipeline, { ...opts, dryRun: true }));
    });

  common(program.command('validate').description('check the pipeline and config files; run nothing')).action(
    async (pipeline: string | undefined, opts: CommonOptions) => {
      const { loadAll } = await import('./context.js');
      const l = await loadAll(pipeline, opts);
      process.stdout.write(
        `${l.pipeline.file}: valid (${l.graph.order.length} stages: ${l.graph.order.map((s) => s.name).join(' -> ')})\n`,
      );
    },
  );

  common(
    program.command('watch').description('rerun what is affected whenever the pipeline, a config or an input changes'),
  )
    .option('-j, --jobs <n>', 'independent stages run at once', '1')
    .option('-b, --backend <name>', 'TensorFlow.js backend: auto, tensorflow, webgpu, wasm, cpu')
    .addOption(new Option('--progress <mode>', 'progress display').choices(['plain', 'json']).default('plain'))
    .option('-v, --verbose', 'print stage output lines too')
    .option('--debounce <ms>', 'wait this long after the last change before rerunning', '300')
    .action(async (pipeline: string | undefined, opts: WatchOptions) => {
      const { watchCommand } = await import('./commands/watch.js');
      setCode(await watchCommand(pipeline, opts));
    });
}

/** exps and its subcommands diff and apply: comparing experiments. */
function expsCommands(program: Command, setCode: SetCode): void {
  const exps = program
    .command('exps')
    .description('compare experiments: the params that differ, headline metrics, duration, date; one row each')
    .enablePositionalOptions()
    .option('--sort <column>', 'sort by this column (a param, a metric, experiment, status, duration, date, ...)')
    .option('--desc', 'sort descending')
    .option(
      '--filter <expr>',
      "keep rows where this holds, e.g. 'evaluate.auc>0.8' (repeatable; ops = != < <= > >= ~)",
      collect,
    )
    .option('-a, --all', 'every column: constant params and metrics, backends, pipeline, run id')
    .option('--all-params', 'every param, not only those that differ')
    .option(
      '--columns <list>',
      'show only these columns, comma-separated, e.g. margin,evaluate.auc (repeatable)',
      collect,
    )
    .option('--width <n>', 'the text table fits this many characters', '120')
    .option(
      '--no-aggregate',
      'one row per experiment (default: experiments that differ only in *.seed params are one row, mean ± std (n))',
    )
    .option('--json', 'print JSON (one object per row)')
    .option('--csv', 'print CSV (RFC 4180)')
    .option('--md', 'print a Markdown table')
    .option('-w, --workspace <dir>', 'workspace root')
    .action(async (opts: ExpsOptions) => {
      const { expsCommand } = await import('./commands/exps.js');
      setCode(expsCommand(opts));
    });
  exps
    .command('diff')
    .description('two experiments side by side: the params that differ and the metrics, with the change')
    .argument('<a>', 'an experiment name (or a unique part of it: its hash)')
    .argument('<b>', 'another')
    .option('-a, --all', 'every param, and backends')
    .option('--json', 'print JSON')
    .option('--md', 'print Markdown tables')
    .option('-w, --workspace <dir>', 'workspace root')
    .action(async (a: string, b: string, opts: DiffOptions) => {
      const { expsDiffCommand } = await import('./commands/exps.js');
      setCode(expsDiffCommand(a, b, opts));
    });
  exps
    .command('apply')
    .description("write an experiment's resolved params as a config file, to rerun it or make it the default")
    .argument('<name>', 'an experiment name (or a unique part of it)')
    .option('-o, --out <file>', 'where to write it (default: configs/<name>.yaml)')
    .option('--force', 'replace the file if it exists')
    .option('-w, --workspace <dir>', 'workspace root')
    .action(async (name: string, opts: ApplyOptions) => {
      const { expsApplyCommand } = await import('./commands/exps.js');
      setCode(expsApplyCommand(name, opts));
    });
}

/** gc, kinds, doctor, report: the commands about the workspace and the installation. */
function workspaceCommands(program: Command, setCode: SetCode): void {
  program
    .command('gc')
    .description('remove cached results that no kept run references')
    .option('--keep-last <n>', 'keep only the newest N run records (and what they reference)')
    .option('-n, --dry-run', 'say what would be freed')
    .option(
      '--drop-epoch-states',
      'also remove every cached epoch state (a run with more epochs then trains from epoch 0)',
    )
    .option('-w, --workspace <dir>', 'workspace root')
    .action(async (opts: GcOptions) => {
      const { gcCommand } = await import('./commands/gc.js');
      setCode(await gcCommand(opts));
    });

  program
    .command('kinds')
    .description("list the stage kinds, or show one kind's inputs, outputs and params")
    .argument('[kind]', 'a kind name, e.g. triarchy')
    .action(async (kind: string | undefined) => {
      const { kindsCommand } = await import('./commands/kinds.js');
      setCode(await kindsCommand(kind));
    });

  program
    .command('doctor')
    .description('show the TensorFlow.js backends this machine has, and whether Slurm is reachable')
    .action(async () => {
      const { doctorCommand } = await import('./commands/doctor.js');
      setCode(await doctorCommand());
    });

  program
    .command('report')
    .description(
      'write one self-contained HTML page: runs, best experiment, table, metric plots, training and ROC curves, wall times',
    )
    .option('-o, --out <file>', 'where to write it (default: results/report.html in the workspace)')
    .option('--sort <column>', 'sort the table by this column')
    .option('--desc', 'sort descending')
    .option('--filter <expr>', 'only experiments where this holds (repeatable), as in exps', collect)
    .option('-a, --all', 'every column in the table: constant params and metrics, backends')
    .option('--all-params', 'show every param in the table')
    .option('--metric <name>', 'pick the best experiment and colour heat maps by this metric, e.g. evaluate.eer:min')
    .option('--no-aggregate', 'one row and point per experiment (default: seed replicates grouped, with error bars)')
    .option('-w, --workspace <dir>', 'workspace root')
    .action(async (opts: ReportOptions) => {
      const { reportCommand } = await import('./commands/report.js');
      setCode(reportCommand(opts));
    });
}

/** embed, verify: the commands that use a trained model. */
function modelCommands(program: Command, setCode: SetCode): void {
  const modelOptions = (c: Command) =>
    c
      .option('-m, --model <dir>', "a prune stage's model folder (default: the newest run's pruned model)")
      .addOption(new Option('--runtime <name>', 'what embeds (default: onnx when onnxruntime-node is installed)'))
      .option('-b, --backend <name>', 'TensorFlow.js backend when it embeds: auto, tensorflow, webgpu, wasm, cpu')
      .option('--batch-size <n>', 'images per forward pass', '64')
      .option('-w, --workspace <dir>', 'workspace root (where results/ and its run records are)');
  modelOptions(
    program
      .command('embed')
      .description('embeddings of image files: CSV to stdout, or --out FILE.csv | .json | .npy')
      .argument('<images...>', 'image files (any format the dataset reader takes)')
      .option('-o, --out <file>', 'write to this file; its extension says the format (.csv, .json, .npy)'),
  ).action(async (images: string[], opts: EmbeddingOptions & { out?: string }) => {
    const { embedCommand } = await import('./commands/embed.js');
    setCode(await embedCommand(images, opts));
  });
  modelOptions(
    program
      .command('verify')
      .description(
        'same person or not: distance, threshold and verdict; exit 0 same, 1 different, 2 bad input, 3 failure',
      )
      .argument('<a>', 'first image')
      .argument('<b>', 'second image')
      .option('--threshold <distance>', "the threshold (default: the model's evaluate threshold)")
      .option('--json', 'print one JSON object'),
  ).action(async (a: string, b: string, opts: VerifyOptions) => {
    const { verifyCommand } = await import('./commands/verify.js');
    setCode(await verifyCommand(a, b, opts));
  });
}

/** Usage errors are bad input (exit 2); --help and --version are not errors. */
const INFO_CODES = new Set(['commander.helpDisplayed', 'commander.help', 'commander.version']);

async function main(argv: string[]): Promise<number> {
  const program = new Command('facepipe')
    .description('Declarative, cached experiment pipelines for lightweight face-verification models')
    .version(await import('../core/version.js').then((m) => m.facepipeVersion()))
    .showHelpAfterError()
    .enablePositionalOptions()
    .exitOverride();
  let code = 0;
  const setCode: SetCode = (c) => {
    code = c;
  };
  pipelineCommands(program, setCode);
  workspaceCommands(program, setCode);
  expsCommands(program, setCode);
  modelCommands(program, setCode);
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    const ce = e as { code?: string; exitCode?: number };
    if (typeof ce.code === 'string' && ce.code.startsWith('commander.')) return INFO_CODES.has(ce.code) ? 0 : 2;
    process.stderr.write(formatError(e) + '\n');
    return e instanceof FacepipeError ? e.exitCode : 1;
  }
  return code;
}

void main(process.argv.slice(2)).then((c) => {
  process.exitCode = c;
  if (c === 130) process.exit(130);
});
