// What a stage asks of the node that runs it: its kind's defaults (which may depend on the backend asked for),
// overridden key by key by the pipeline's `resources:` and the configs' `executor.resources.<stage>`.
import type { StageResources } from '../contracts/resources.js';
import type { StageSpec } from '../load/load.js';

export function stageResources(stage: StageSpec, backend: string): StageResources {
  const out: StageResources = { ...stage.kind.resources?.(stage.params, backend) };
  for (const [k, v] of Object.entries(stage.resources ?? {}))
    if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
