// Finds the stage kinds: every folder next to this file with a kind.js is a kind. Adding a kind touches one
// folder. A kind folder whose kind.js exports no kind, or a second kind with a name already taken, is a
// programming error that fails loudly rather than silently dropping or replacing a kind.
import { readdirSync, existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { sourceDir } from '../core/source-dir.js';
import { join } from 'node:path';
import type { KindCatalog, StageKind } from '../contracts/stage-kind.js';

let loaded: Promise<KindCatalog> | undefined;

function isStageKind(v: unknown): v is StageKind {
  const k = v as Partial<StageKind> | undefined;
  return typeof k === 'object' && k !== null && typeof k.name === 'string' && typeof k.runModule === 'string';
}

export function loadKinds(): Promise<KindCatalog> {
  loaded ??= (async () => {
    const here = join(sourceDir, 'stages');
    const dirs = readdirSync(here, { withFileTypes: true })
      .filter((d) => d.isDirectory() && existsSync(join(here, d.name, 'kind.js')))
      .map((d) => d.name)
      .sort();
    const found = await Promise.all(
      dirs.map(async (dir) => {
        const url = pathToFileURL(join(here, dir, 'kind.js'));
        const mod = (await import(url.href)) as { kind?: unknown; default?: unknown };
        const kind = mod.kind ?? mod.default;
        if (!isStageKind(kind))
          throw new Error(`${fileURLToPath(url)} exports no stage kind: export const kind: StageKind = { ... }`);
        // Resolve the run module against the kind's own folder, so the worker can import it from anywhere.
        return { dir, kind: { ...kind, runModule: new URL(kind.runModule, url).href } };
      }),
    );
    const kinds = new Map<string, { dir: string; kind: StageKind }>();
    for (const f of found) {
      const taken = kinds.get(f.kind.name);
      if (taken)
        throw new Error(`two stage kinds are named '${f.kind.name}': src/stages/${taken.dir} and src/stages/${f.dir}`);
      kinds.set(f.kind.name, f);
    }
    return { get: (n) => kinds.get(n)?.kind, names: () => [...kinds.keys()].sort() };
  })();
  return loaded;
}
