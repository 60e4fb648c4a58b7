// The layers hold: every import under src/ (static, type-only and dynamic) points the allowed way, and no stage
// kind imports a sibling kind. A violation names the file and line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { packageRoot } from '../../src/core/package-root.js';

/** Layer -> the layers it may import (besides itself). */
const ALLOWED: Record<string, string[] | '*'> = {
  cli: '*',
  execute: ['plan', 'load', 'core', 'contracts'],
  plan: ['load', 'core', 'contracts'],
  load: ['core', 'contracts'],
  stages: ['ml', 'core', 'contracts'],
  ml: ['core'],
  compare: ['core'],
  contracts: [],
  core: [],
};

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return /\.ts$/.test(e.name) && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

const IMPORT = /(?:\bfrom\s+|\bimport\s*\(\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+)['"]/g;

interface Edge {
  file: string;
  line: number;
  target: string;
}

function edges(src: string): Edge[] {
  const out: Edge[] = [];
  for (const file of sources(src)) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(IMPORT)) {
      const line = text.slice(0, m.index).split('\n').length;
      out.push({ file: relative(src, file), line, target: relative(src, resolve(dirname(file), m[1])) });
    }
  }
  return out;
}

const layerOf = (rel: string) => rel.split(sep)[0];

function layerViolations(all: Edge[]): string[] {
  const bad: string[] = [];
  for (const e of all) {
    const from = layerOf(e.file);
    const to = layerOf(e.target);
    const allowed = ALLOWED[from];
    if (allowed === undefined) bad.push(`src/${e.file}: folder '${from}' has no place in the layer rules`);
    else if (from !== to && allowed !== '*' && !allowed.includes(to))
      bad.push(`src/${e.file}:${e.line}: ${from} may not import ${to} (src/${e.target})`);
  }
  return bad;
}

function siblingKindImports(all: Edge[]): string[] {
  const bad: string[] = [];
  for (const e of all) {
    const [layer, kind, file] = e.file.split(sep);
    const [tLayer, tKind, tFile] = e.target.split(sep);
    // Only files inside a kind's folder (stages/<kind>/<file>) importing another folder under stages/.
    if (layer !== 'stages' || tLayer !== 'stages' || !file || !tFile) continue;
    if (kind === tKind || tKind === 'shared') continue;
    bad.push(`src/${e.file}:${e.line}: stage kind '${kind}' imports kind '${tKind}' (src/${e.target})`);
  }
  return bad;
}

const SRC = join(packageRoot(), 'src');

test('layers: imports under src/ point only the allowed way', () => {
  const all = edges(SRC);
  assert.ok(all.length > 100, `found only ${all.length} imports: is the scan broken?`);
  assert.deepEqual(layerViolations(all), []);
});

test('layers: no stage kind imports a sibling kind (shared code lives in stages/shared)', () => {
  assert.deepEqual(siblingKindImports(edges(SRC)), []);
});

test('layers: the checks flag violations, with file and line', () => {
  const e = (file: string, target: string): Edge => ({
    file: file.split('/').join(sep),
    line: 7,
    target: target.split('/').join(sep),
  });
  assert.deepEqual(layerViolations([e('ml/model/io.ts', 'execute/store/store.ts')]), [
    `src/${join('ml', 'model', 'io.ts')}:7: ml may not import execute (src/${join('execute', 'store', 'store.ts')})`,
  ]);
  assert.equal(layerViolations([e('plan/keys.ts', 'execute/runner.ts')]).length, 1);
  assert.equal(
    layerViolations([e('cli/main.ts', 'ml/types.ts'), e('stages/split/run.ts', 'ml/data/rng.ts')]).length,
    0,
  );
  assert.equal(layerViolations([e('newlayer/x.ts', 'core/hash.ts')]).length, 1, 'an unknown folder is flagged');
  assert.equal(siblingKindImports([e('stages/triarchy/run.ts', 'stages/pretext/run.ts')]).length, 1);
  assert.equal(siblingKindImports([e('stages/triarchy/run.ts', 'stages/shared/backbone-params.ts')]).length, 0);
  assert.equal(siblingKindImports([e('stages/registry.ts', 'stages/split/kind.ts')]).length, 0);
});
