// A stage's `inputs:` as written: each is another stage's output ('<stage>.<output>', an edge of the graph) or a
// file or folder of the workspace ({ path: ... }), checked against what the stage's kind declares.
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type { InputSpec } from '../contracts/stage-kind.js';
import { didYouMean, type Diagnostic } from '../core/errors.js';
import { isPlainObject } from '../core/objects.js';
import { describe } from './ajv.js';
import { at, type Where } from './files.js';
import { NAME_PATTERN } from './pipeline-schema.js';
import type { YamlFile } from './yaml.js';

export type InputRef = { from: 'stage'; stage: string; output: string } | { from: 'path'; path: string };

const NAME_RE = new RegExp(NAME_PATTERN);

export interface StageInputsContext {
  workspace: string;
  y: YamlFile;
  stage: string;
  kind: string;
  declared: InputSpec[] | 'any';
  diags: Diagnostic[];
}

function parseRef(c: StageInputsContext, inName: string, ref: unknown, w: Where): InputRef | undefined {
  const keyPath = `stages.${c.stage}.inputs.${inName}`;
  if (typeof ref === 'string') {
    const m = /^([^.]+)\.([^.]+)$/.exec(ref);
    if (m && NAME_RE.test(m[1]) && NAME_RE.test(m[2])) return { from: 'stage', stage: m[1], output: m[2] };
    c.diags.push({
      code: 'bad-reference',
      message: `input '${inName}' of stage '${c.stage}' is ${describe(ref)}; expected <stage>.<output>`,
      hint: `reference another stage's output like 'split.splits', or give a file as { path: ${ref} }`,
      keyPath,
      ...w,
    });
    return undefined;
  }
  if (isPlainObject(ref) && typeof ref.path === 'string' && ref.path !== '' && Object.keys(ref).length === 1) {
    // Checked here, with the other problems, so a missing file stops the run before anything is written.
    if (!existsSync(isAbsolute(ref.path) ? ref.path : resolve(c.workspace, ref.path)))
      c.diags.push({
        code: 'input-missing',
        message: `input '${inName}' of stage '${c.stage}' names ${ref.path}, which does not exist`,
        hint: 'create it, or fix the path (relative to the workspace root)',
        keyPath: `${keyPath}.path`,
        ...at(c.y, ['stages', c.stage, 'inputs', inName, 'path']),
      });
    return { from: 'path', path: ref.path };
  }
  const extra = isPlainObject(ref) ? Object.keys(ref).find((k) => k !== 'path') : undefined;
  c.diags.push({
    code: 'bad-reference',
    keyPath,
    ...w,
    message:
      extra !== undefined
        ? `input '${inName}' of stage '${c.stage}' has unknown key '${extra}'; a file input is { path: FILE }`
        : `input '${inName}' of stage '${c.stage}' must be '<stage>.<output>' or { path: FILE } with a non-empty path, got ${describe(isPlainObject(ref) ? ref.path : ref)}`,
    hint: extra !== undefined ? `remove '${extra}'` : 'e.g. splits: split.splits, or dataset: { path: data/cmu-faces }',
  });
  return undefined;
}

export function resolveInputs(
  c: StageInputsContext,
  rawInputs: Record<string, unknown>,
  inputsWritten: boolean,
): { inputs: Record<string, InputRef>; inputWhere: Record<string, Where> } {
  const inputs: Record<string, InputRef> = {};
  const inputWhere: Record<string, Where> = {};
  for (const [inName, ref] of Object.entries(rawInputs)) {
    const w = at(c.y, ['stages', c.stage, 'inputs', inName]);
    inputWhere[inName] = w;
    if (c.declared !== 'any' && !c.declared.some((d) => d.name === inName)) {
      const names = c.declared.map((d) => d.name);
      const guess = didYouMean(inName, names);
      c.diags.push({
        code: 'unknown-input',
        message: `stage '${c.stage}' (kind ${c.kind}) has no input '${inName}'`,
        hint: guess ? `did you mean '${guess}'?` : `its inputs: ${names.join(', ') || 'none'}`,
        keyPath: `stages.${c.stage}.inputs.${inName}`,
        ...at(c.y, ['stages', c.stage, 'inputs', inName], true),
      });
      continue;
    }
    const parsed = parseRef(c, inName, ref, w);
    if (parsed) inputs[inName] = parsed;
  }
  for (const d of c.declared === 'any' ? [] : c.declared) {
    if (d.optional || d.name in rawInputs) continue;
    c.diags.push({
      code: 'missing-input',
      message: `stage '${c.stage}' (kind ${c.kind}) needs input '${d.name}': ${d.description}`,
      hint: `add it under stages.${c.stage}.inputs`,
      keyPath: `stages.${c.stage}.inputs`,
      ...at(c.y, ['stages', c.stage, inputsWritten ? 'inputs' : 'kind']),
    });
  }
  return { inputs, inputWhere };
}
