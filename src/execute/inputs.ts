// A stage's inputs as the cache key sees them: content digests (stat-cached for files of the workspace), the
// absolute paths the stage reads, and the labels reasons use ('split', 'data/faces').
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type { StoredOutput } from '../contracts/records.js';
import { FacepipeError } from '../core/errors.js';
import type { StageSpec } from '../load/load.js';
import type { Workspace } from './workspace.js';

export type PlacedOutputs = Record<string, StoredOutput & { path: string }>;

export interface StageInputs {
  digests: Record<string, string>;
  paths: Record<string, string>;
  labels: Record<string, string>;
}

/** undefined when an upstream stage's outputs are not known (yet). */
export async function inputDigests(
  ws: Workspace,
  stage: StageSpec,
  upstream: (name: string) => PlacedOutputs | undefined,
): Promise<StageInputs | undefined> {
  const out: StageInputs = { digests: {}, paths: {}, labels: {} };
  for (const [name, ref] of Object.entries(stage.inputs)) {
    if (ref.from === 'stage') {
      const o = upstream(ref.stage)?.[ref.output];
      if (!o) return undefined;
      out.digests[name] = o.digest;
      out.paths[name] = o.path;
      out.labels[name] = ref.stage;
      continue;
    }
    const abs = isAbsolute(ref.path) ? ref.path : resolve(ws.root, ref.path);
    if (!existsSync(abs)) {
      throw new FacepipeError({
        code: 'input-missing',
        message: `input '${name}' of stage '${stage.name}' names ${ref.path}, which does not exist`,
        ...stage.inputWhere[name],
        hint: 'create it, or fix the path (relative to the workspace root)',
      });
    }
    out.digests[name] = (await ws.digests.inputDigest(abs)).digest;
    out.paths[name] = abs;
    out.labels[name] = ref.path;
  }
  return out;
}
