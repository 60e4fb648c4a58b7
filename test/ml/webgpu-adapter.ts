// The software WebGPU adapter the webgpu tests run on (Mesa lavapipe, fetched by scripts/software-adapter.sh into
// .software-adapter/). Missing adapter = a failed test with the fix in its message, never a skip.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/core/package-root.js';
import type { BackendInfo } from '../../src/ml/types.js';

const FIX = 'run scripts/software-adapter.sh (.ci/run does) to fetch a software WebGPU adapter';

/** The variables that make Dawn see the software adapter; throws, saying how to get it, when it is missing. */
export function softwareAdapterEnv(): Record<string, string> {
  const file = join(packageRoot(), '.software-adapter', 'env.json');
  if (!existsSync(file)) throw new Error(`no software WebGPU adapter (${file} missing): ${FIX}`);
  const env = (JSON.parse(readFileSync(file, 'utf8')) as { env: Record<string, string> }).env;
  // The dynamic loader reads LD_LIBRARY_PATH at start-up only.
  if (env.LD_LIBRARY_PATH && !(process.env.LD_LIBRARY_PATH ?? '').includes(env.LD_LIBRARY_PATH))
    throw new Error(
      `the software adapter needs libraries this system lacks: start the tests after \`source ${join(packageRoot(), '.software-adapter', 'env.sh')}\``,
    );
  return env;
}

/** Points this process's Dawn at the software adapter and switches to the webgpu backend. */
export async function useSoftwareAdapter(): Promise<BackendInfo> {
  for (const [k, v] of Object.entries(softwareAdapterEnv())) process.env[k] = v;
  const { initBackend } = await import('../../src/ml/backend/select.js');
  try {
    return await initBackend('webgpu');
  } catch (err) {
    throw new Error(`${(err as Error).message}\n(${FIX}; .software-adapter/ may be stale: rerun it with --force)`, {
      cause: err,
    });
  }
}
