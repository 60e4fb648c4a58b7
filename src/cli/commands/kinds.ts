// facepipe kinds [NAME]: the stage kinds, their inputs, outputs and params (with defaults), from their own
// schemas, so the documentation cannot drift from what validation enforces.
import { didYouMean, FacepipeError } from '../../core/errors.js';
import { loadKinds } from '../../stages/registry.js';
import type { JsonSchema, StageKind } from '../../contracts/stage-kind.js';

/** 'integer', 'string|null', '"eer"|"accuracy"', 'array|"any"|null' (anyOf alternatives joined). */
function typeName(s: JsonSchema): string {
  if (s.enum) return (s.enum as unknown[]).map((v) => JSON.stringify(v)).join('|');
  if ('const' in s) return JSON.stringify(s.const);
  if (Array.isArray(s.anyOf)) return (s.anyOf as JsonSchema[]).map(typeName).join('|');
  if (Array.isArray(s.type)) return (s.type as string[]).join('|');
  return typeof s.type === 'string' ? s.type : 'any';
}

function paramLines(schema: JsonSchema, prefix = '', out: string[] = []): string[] {
  const props = (schema.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((schema.required ?? []) as string[]);
  for (const [name, s] of Object.entries(props)) {
    const path = prefix ? `${prefix}.${name}` : name;
    const type = typeName(s);
    const def =
      'default' in s && !(typeof s.default === 'object' && s.default !== null && !Array.isArray(s.default))
        ? ` = ${JSON.stringify(s.default)}`
        : required.has(name)
          ? ' (required)'
          : '';
    const description = typeof s.description === 'string' ? `  ${s.description}` : '';
    if (s.type === 'object' && s.properties) {
      out.push(`  ${path}:${description}`);
      paramLines(s, path, out);
    } else {
      out.push(`  ${path} (${type})${def}${description}`);
    }
  }
  return out;
}

function describeKind(k: StageKind): string {
  const defaults = {} as Record<string, unknown>;
  const inputs = k.inputs(defaults);
  const lines = [`${k.name} (version ${k.version}): ${k.description}`];
  lines.push('inputs:');
  if (inputs === 'any') lines.push('  any names: each becomes $FACEPIPE_IN_<name> / {inputs.<name>}');
  else for (const i of inputs) lines.push(`  ${i.name}${i.optional ? ' (optional)' : ''}: ${i.description}`);
  lines.push('outputs:');
  let outputs: ReturnType<StageKind['outputs']> = [];
  try {
    outputs = k.outputs(defaults);
  } catch {
    /* depends on params */
  }
  if (!outputs.length) lines.push('  as declared in params');
  for (const o of outputs) lines.push(`  ${o.name} (${o.type}): ${o.description}`);
  lines.push('params:', ...paramLines(k.paramsSchema));
  return lines.join('\n');
}

export async function kindsCommand(name?: string): Promise<number> {
  const reg = await loadKinds();
  if (name) {
    const k = reg.get(name);
    if (!k) {
      const guess = didYouMean(name, reg.names());
      throw new FacepipeError({
        code: 'unknown-kind',
        file: 'command line',
        message: `no stage kind named '${name}'`,
        hint: guess ? `did you mean '${guess}'?` : `kinds: ${reg.names().join(', ')}`,
      });
    }
    process.stdout.write(describeKind(k) + '\n');
    return 0;
  }
  for (const n of reg.names()) process.stdout.write(`${n.padEnd(10)} ${reg.get(n)!.description}\n`);
  process.stdout.write('\nfacepipe kinds NAME shows its inputs, outputs and params.\n');
  return 0;
}
