// Where facepipe keeps things inside a workspace. Everything lives under the workspace root:
//   .facepipe/store/      the content-addressed cache (see store.ts); elsewhere only when FACEPIPE_STORE says so
//   .facepipe/work/<key>  a running stage's resumable scratch (epoch checkpoints), removed after success
//   .facepipe/tmp/        outputs being written
//   .facepipe/state/      stat cache, YAML parse cache, last params per experiment (for "why does this rerun")
//   .facepipe/lock        who is running
//   results/<experiment>/<stage>/<output>   the stable place to find each stage's outputs
//   results/runs/<run-id>/run.json          one record per run
import { join, resolve } from 'node:path';
import { Digests } from './store/digests.js';
import { Store } from './store/store.js';
import { displayPath, isInside, resolveForWrite, resolveInside } from '../core/fsutil.js';

/** The one explicit way to keep the store outside the workspace (e.g. on a cluster's shared filesystem). */
export const STORE_ENV = 'FACEPIPE_STORE';

export class Workspace {
  readonly dot: string;
  readonly store: Store;
  readonly digests: Digests;
  /** The store's root when FACEPIPE_STORE names one (absolute, or relative to the workspace root). */
  readonly externalStore?: string;
  /** Where warnings about ignored state go; the runner sends them to its events. Each is said once. */
  warnSink: (message: string) => void = (m) => process.stderr.write(`warning: ${m}\n`);
  private readonly warned = new Set<string>();

  /** `statCache: false` for a job's own view of the workspace: only the runner persists the stat cache. */
  constructor(
    readonly root: string,
    opts: { statCache?: boolean } = {},
  ) {
    this.dot = join(root, '.facepipe');
    const warn = (file: string, why: string, then: string) => this.stateWarning(file, why, then);
    this.digests = new Digests(opts.statCache === false ? undefined : join(this.dot, 'state', 'stat-cache.json'), warn);
    const env = process.env[STORE_ENV];
    this.externalStore = env ? resolve(root, env) : undefined;
    this.store = new Store(this.externalStore ?? join(this.dot, 'store'), this.digests, warn);
  }

  warn(message: string): void {
    if (this.warned.has(message)) return;
    this.warned.add(message);
    this.warnSink(message);
  }

  /** A state file that was not trusted: named, with why and what happens instead. */
  stateWarning(file: string, why: string, then: string): void {
    this.warn(`ignoring ${displayPath(this.root, file)}: ${why}; ${then}`);
  }

  /**
   * Refuse to run when a folder facepipe writes into leads out of the workspace (a symlinked .facepipe,
   * .facepipe/state, store/objects, ...): writes go only where the user said, never through a stray link.
   * The store may be elsewhere only through FACEPIPE_STORE, and then its own folders must stay inside it.
   */
  assertConfined(): void {
    for (const rel of ['lock', 'state/yaml/x', 'state/last/x', 'state/stat-cache.json', 'work/x', 'tmp/x'])
      resolveForWrite(this.root, join('.facepipe', rel), 'workspace state path');
    if (this.externalStore) {
      for (const rel of ['objects/x', 'stages/x', 'epochs/x'])
        resolveInside(this.externalStore, join(this.externalStore, rel), `store path (${STORE_ENV})`);
    } else {
      for (const rel of ['objects/x', 'stages/x', 'epochs/x'])
        resolveForWrite(this.root, join('.facepipe/store', rel), 'store path');
    }
  }

  /** Is the store where the workspace's own state is (the default), i.e. not shared with other workspaces? */
  get storeIsLocal(): boolean {
    return !this.externalStore || isInside(this.root, this.externalStore);
  }
  get lockPath(): string {
    return join(this.dot, 'lock');
  }
  get tmpDir(): string {
    return join(this.dot, 'tmp');
  }
  get workRoot(): string {
    return join(this.dot, 'work');
  }
  workDir(key: string): string {
    return join(this.workRoot, key);
  }
  get yamlCacheDir(): string {
    return join(this.dot, 'state', 'yaml');
  }
  get lastStateDir(): string {
    return join(this.dot, 'state', 'last');
  }
  lastStatePath(experiment: string): string {
    return join(this.lastStateDir, `${experiment}.json`);
  }
  get resultsDir(): string {
    return join(this.root, 'results');
  }
  get runsDir(): string {
    return join(this.resultsDir, 'runs');
  }
  /** results/<experiment>/<stage>/<output>, refusing any escape from the workspace. */
  outputPath(experiment: string, stage: string, output: string): string {
    return resolveForWrite(this.root, join('results', experiment, stage, output), 'output path');
  }
}
