// The executors, by name: an explicit map, each loaded only when chosen.
import type { Executor } from '../../contracts/executor.js';

const EXECUTORS: Record<string, () => Promise<Executor>> = {
  local: async () => new (await import('./local/local-executor.js')).LocalExecutor(),
};

export const EXECUTOR_NAMES = Object.keys(EXECUTORS);

export async function createExecutor(name: string): Promise<Executor> {
  const make = EXECUTORS[name];
  if (!make) throw new Error(`unknown executor '${name}' (executors: ${EXECUTOR_NAMES.join(', ')})`);
  return make();
}
