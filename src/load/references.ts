// Checks across stages: every '<stage>.<output>' reference names an existing stage and one of its outputs, and
// the references form no cycle. Reported with every other problem, naming where the reference is.
import { didYouMean, type Diagnostic } from '../core/errors.js';
import { findCycles } from './cycles.js';
import type { StageSpec } from './load.js';
import { withKeyPath } from './files.js';

/** Stage -> the stages whose outputs it reads (references to missing stages left out). */
export function upstreamOf(stages: StageSpec[]): Map<string, string[]> {
  const names = new Set(stages.map((s) => s.name));
  return new Map(
    stages.map((s) => [
      s.name,
      [...new Set(Object.values(s.inputs).flatMap((r) => (r.from === 'stage' && names.has(r.stage) ? [r.stage] : [])))],
    ]),
  );
}

export function checkReferences(
  stages: StageSpec[],
  stageNames: string[],
  outputsUnknown: Set<string>,
  diags: Diagnostic[],
): void {
  const byName = new Map(stages.map((s) => [s.name, s]));
  for (const s of stages) {
    for (const [inName, ref] of Object.entries(s.inputs)) {
      if (ref.from !== 'stage') continue;
      const where = () => withKeyPath(`stages.${s.name}.inputs.${inName}`, s.inputWhere[inName]);
      if (!stageNames.includes(ref.stage)) {
        const guess = didYouMean(ref.stage, stageNames);
        diags.push({
          code: 'missing-reference',
          message: `input '${inName}' of stage '${s.name}' refers to stage '${ref.stage}', which does not exist`,
          hint: guess ? `did you mean '${guess}.${ref.output}'?` : `stages: ${stageNames.join(', ')}`,
          ...where(),
        });
        continue;
      }
      const up = byName.get(ref.stage);
      if (!up || outputsUnknown.has(up.name) || up.outputs.some((o) => o.name === ref.output)) continue;
      const names = up.outputs.map((o) => o.name);
      const guess = didYouMean(ref.output, names);
      diags.push({
        code: 'missing-reference',
        message: `input '${inName}' of stage '${s.name}' refers to output '${ref.output}' of stage '${ref.stage}', which has no such output`,
        hint: guess ? `did you mean '${ref.stage}.${guess}'?` : `outputs of ${ref.stage}: ${names.join(', ')}`,
        ...where(),
      });
    }
  }
  for (const cycle of findCycles(
    stages.map((s) => s.name),
    upstreamOf(stages),
  )) {
    const first = byName.get(cycle[0])!;
    const inName = Object.entries(first.inputs).find(([, r]) => r.from === 'stage' && r.stage === cycle[1])?.[0];
    diags.push({
      code: 'cycle',
      message: `the stages form a cycle: ${cycle.join(' -> ')} (each reads an output of the next)`,
      hint: 'a stage cannot depend, directly or through others, on its own outputs; remove one of these input references',
      keyPath: inName ? `stages.${first.name}.inputs.${inName}` : `stages.${first.name}`,
      ...((inName && first.inputWhere[inName]) || first.where),
    });
  }
}
