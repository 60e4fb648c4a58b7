// Finds the stage kinds: every folder next to this file with a kind.js. Adding a kind touches one folder.
import { readdirSync, existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';
import type { StageKind } from './kind.js';

export interface KindRegistry {
  get(name: string): StageKind | undefined;
  names(): string[];
}

let loaded: Promise<KindRegistry> | undefined;

export function loadKinds(): Promise<KindRegistry> {
  loaded ??= (async () => {
    const here = fileURLToPath(new URL('.', import.meta.url));
    const kinds = new Map<string, StageKind>();
    const dirs = readdirSync(here, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort();
    await Promise.all(
      dirs.map(async (dir) => {
        const file = join(here, dir, 'kind.js');
        if (!existsSync(file)) return;
        const url = pathToFileURL(file);
        const mod = (await import(url.href)) as { kind?: StageKind; default?: StageKind };
        const kind = mod.kind ?? mod.default;
        if (!kind) return;
        // Resolve the run module against the kind's own folder, so the worker can import it from anywhere.
        kinds.set(kind.name, { ...kind, runModule: new URL(kind.runModule, url).href });
      }),
    );
    return { get: (n) => kinds.get(n), names: () => [...kinds.keys()].sort() };
  })();
  return loaded;
}
