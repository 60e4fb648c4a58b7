// Runs the face-verification stages in-process (no engine, no cache) with a config layered on the
// pipeline's params, and prints each stage's wall time and metrics. For tuning the configs:
//   npx tsx bench/face-verification.bench.ts [configs/default.yaml] [--set stage.key=value ...] [--out DIR]
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parse } from 'yaml';
import { fakeContext, repoRoot } from '../test/stages/fake-context.js';
import type { StageKind, StageRun } from '../src/contracts/stage-kind.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
function merge(a: Obj, b: Obj): Obj {
  const out: Obj = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = isObj(v) && isObj(out[k]) ? merge(out[k], v) : v;
  return out;
}

const args = process.argv.slice(2);
const root = repoRoot();
const pipelineFile = join(root, 'pipelines', 'face-verification.yaml');
const pipeline = parse(readFileSync(pipelineFile, 'utf8')) as {
  config?: string;
  stages: Record<string, { kind: string; inputs?: Obj; params?: Obj }>;
};
let config: Obj = pipeline.config
  ? ((parse(readFileSync(resolve(dirname(pipelineFile), pipeline.config), 'utf8')) as Obj) ?? {})
  : {};
let out = '/tmp/facepipe-bench';
const only: string[] = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--set') {
    const [path, value] = args[++i].split('=');
    const keys = path.split('.');
    let o: Obj = {};
    const top = o;
    keys.forEach((k, j) => {
      if (j === keys.length - 1) o[k] = parse(value);
      else {
        o[k] = {};
        o = o[k] as Obj;
      }
    });
    config = merge(config, top);
  } else if (a === '--out') out = args[++i]!;
  else if (a === '--only') only.push(...args[++i].split(','));
  else config = merge(config, (parse(readFileSync(resolve(a), 'utf8')) as Obj) ?? {});
}
if (only.length === 0) rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

const outputsOf = new Map<string, Record<string, string>>();
const t00 = performance.now();
for (const [name, stage] of Object.entries(pipeline.stages)) {
  const kindMod = (await import(join(root, 'src', 'stages', stage.kind, 'kind.ts'))) as { kind: StageKind<Obj> };
  const runMod = (await import(join(root, 'src', 'stages', stage.kind, 'run.ts'))) as { run: StageRun<Obj> };
  const inputs: Record<string, string> = {};
  for (const [inp, src] of Object.entries(stage.inputs ?? {})) {
    if (isObj(src)) inputs[inp] = join(root, String(src.path));
    else {
      const [up, o] = String(src).split('.');
      inputs[inp] = outputsOf.get(up)![o]!;
    }
  }
  const params = merge(stage.params ?? {}, (config[name] as Obj) ?? {});
  const ctx = fakeContext(kindMod.kind, params, inputs, { root: join(out, name), stage: name });
  outputsOf.set(name, ctx.outputs);
  if (only.length > 0 && !only.includes(name)) continue;
  rmSync(join(out, name), { recursive: true, force: true });
  const again = fakeContext(kindMod.kind, params, inputs, { root: join(out, name), stage: name });
  const t0 = performance.now();
  again.log = (l) => console.log(`  [${name} ${((performance.now() - t00) / 1000).toFixed(0)}s] ${l}`);
  await runMod.run(again);
  console.log(`${name}: ${((performance.now() - t0) / 1000).toFixed(1)} s ${JSON.stringify(again.recorded)}`);
}
console.log(`total ${((performance.now() - t00) / 1000).toFixed(1)} s`);
