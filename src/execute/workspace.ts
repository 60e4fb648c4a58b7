// Where facepipe keeps things inside a workspace. Everything lives under the workspace root:
//   .facepipe/store/      the content-addressed cache (see store.ts)
//   .facepipe/work/<key>  a running stage's resumable scratch (epoch checkpoints), removed after success
//   .facepipe/tmp/        outputs being written
//   .facepipe/state/      stat cache, last params per experiment (for "why does this rerun")
//   .facepipe/lock        who is running
//   results/<experiment>/<stage>/<output>   the stable place to find each stage's outputs
//   results/runs/<run-id>/run.json          one record per run
import { join } from 'node:path';
import { Digests } from './store/digests.js';
import { Store } from './store/store.js';
import { resolveForWrite } from '../core/fsutil.js';

export class Workspace {
  readonly dot: string;
  readonly store: Store;
  readonly digests: Digests;
  /** `statCache: false` for a job's own view of the workspace: only the runner persists the stat cache. */
  constructor(
    readonly root: string,
    opts: { statCache?: boolean } = {},
  ) {
    this.dot = join(root, '.facepipe');
    this.digests = new Digests(opts.statCache === false ? undefined : join(this.dot, 'state', 'stat-cache.json'));
    this.store = new Store(join(this.dot, 'store'), this.digests);
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
