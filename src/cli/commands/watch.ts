// facepipe watch: rerun what is affected whenever the pipeline, a config or an input file changes.
// States: idle -> debouncing -> running (-> cancelling when a newer change arrives) -> idle. A validation
// error is shown and watching goes on; a stage that failed is not retried until its key (inputs, params) changes.
import { resolve, isAbsolute } from 'node:path';
import { formatError } from '../../core/errors.js';
import type { PipelineSpec } from '../../load/load.js';
import { loadAll } from '../context.js';
import { headlineLines } from '../headline.js';
import { positiveInt, runSession } from '../session.js';
import type { RunCliOptions } from './run.js';
import { resolveBackend } from './backend-option.js';

export interface WatchOptions extends RunCliOptions {
  debounce?: string;
}

/** What a run of this pipeline reads: the pipeline file, its configs and its path inputs. */
function filesOf(p: PipelineSpec, root: string): string[] {
  const inputs = p.stages.flatMap((s) =>
    Object.values(s.inputs).flatMap((r) =>
      r.from === 'path' ? [isAbsolute(r.path) ? r.path : resolve(root, r.path)] : [],
    ),
  );
  return [resolve(root, p.file), ...p.configFiles.map((c) => resolve(root, c)), ...inputs];
}

export async function watchCommand(pipelineArg: string | undefined, o: WatchOptions): Promise<number> {
  const { watch } = await import('chokidar');
  const root = resolve(o.workspace ?? process.cwd());
  const debounceMs = Number(o.debounce ?? 300);
  const jobs = positiveInt('--jobs', o.jobs, 1);
  const failedKeys = new Map<string, string>();
  const watcher = watch([], {
    ignoreInitial: true,
    ignored: (p: string) => p.includes('/.facepipe') || p.startsWith(resolve(root, 'results')),
  });
  let watched = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  let current: { controller: AbortController; done: Promise<void> } | undefined;
  let stopping = false;
  const say = (s: string) => process.stdout.write(`[watch] ${s}\n`);

  const setWatched = (paths: string[]) => {
    const next = new Set(paths);
    const add = [...next].filter((p) => !watched.has(p));
    const remove = [...watched].filter((p) => !next.has(p));
    if (add.length) watcher.add(add);
    if (remove.length) watcher.unwatch(remove);
    watched = next;
  };

  const cycle = async (signal: AbortSignal) => {
    let loaded;
    try {
      loaded = await loadAll(pipelineArg, o);
    } catch (e) {
      process.stderr.write(formatError(e) + '\n');
      say('fix the files above; still watching');
      // Keep watching the pipeline and the configs named on the command line, so a fix is seen.
      setWatched([
        resolve(root, pipelineArg ?? 'pipelines/face-verification.yaml'),
        ...(o.config ?? []).map((c) => resolve(root, c)),
        ...watched,
      ]);
      return;
    }
    const p = loaded.pipeline;
    setWatched(filesOf(p, root));
    const experiment = { name: o.experiment ?? p.name, pipeline: p, graph: loaded.graph };
    const result = await runSession({
      loaded,
      experiments: [experiment],
      command: `facepipe watch ${loaded.pipelineFile}`,
      progress: o.progress === 'json' ? 'json' : 'plain',
      verbose: !!o.verbose,
      wait: true,
      jobs,
      force: [],
      backend: resolveBackend(o.backend, p.backend),
      failedKeys,
      signal,
    });
    for (const s of result.stages) if (s.state === 'failed' && s.key && s.error) failedKeys.set(s.key, s.error);
    // The figures this run ended with, so a change's effect shows without opening a file.
    if (o.progress !== 'json') for (const line of headlineLines(experiment, result.stages)) say(line);
  };

  const start = () => {
    const controller = new AbortController();
    const done = cycle(controller.signal)
      .catch((e) => {
        process.stderr.write(formatError(e) + '\n');
      })
      .then(() => {
        if (current?.controller === controller) current = undefined;
        if (!stopping) say('watching for changes (Ctrl-C to stop)');
      });
    current = { controller, done };
  };

  const onChange = (path: string) => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => void restart(path), debounceMs);
  };
  const restart = async (path: string) => {
    timer = undefined;
    say(`changed: ${path.startsWith(root) ? path.slice(root.length + 1) : path}`);
    if (current) {
      say('cancelling the run in progress (completed stages are kept)');
      const prev = current;
      prev.controller.abort();
      await prev.done;
    }
    if (!stopping) start();
  };
  watcher.on('all', (_event: string, path: string) => onChange(path));
  watcher.on('error', (e: unknown) => process.stderr.write(`watch error: ${String(e)}\n`));

  start();
  return new Promise<number>((resolveExit) => {
    const stop = async () => {
      if (stopping) process.exit(130);
      stopping = true;
      if (timer) clearTimeout(timer);
      current?.controller.abort();
      await current?.done;
      await watcher.close();
      resolveExit(130);
    };
    process.on('SIGINT', () => void stop());
    process.on('SIGTERM', () => void stop());
  });
}
