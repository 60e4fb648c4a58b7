// Reading the YAML files a pipeline is made of, and positions in them for diagnostics.
import { readFileSync } from 'node:fs';
import type { Diagnostic } from '../core/errors.js';
import { displayPath } from '../core/fsutil.js';
import { locate, parseYamlCached, type YamlCache, type YamlFile } from './yaml.js';

export interface Where {
  file: string;
  line: number;
  column: number;
  source?: string;
}

export function readYaml(
  workspace: string,
  absPath: string,
  diags: Diagnostic[],
  what: string,
  cache?: YamlCache,
): YamlFile | undefined {
  const file = displayPath(workspace, absPath);
  let text: string;
  try {
    text = readFileSync(absPath, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    diags.push({
      code: 'file-missing',
      file,
      message: `cannot read ${what} ${file}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`,
      hint: `check the path (resolved to ${absPath})`,
    });
    return undefined;
  }
  const { yaml, diagnostics } = parseYamlCached(file, text, cache);
  diags.push(...diagnostics);
  return yaml;
}

/** Where a key is; computed on first read, since positions need the full YAML parse and only errors use them. */
export function at(y: YamlFile, path: Array<string | number>, key = false): Where {
  let p: ReturnType<typeof locate> | undefined;
  const get = () => (p ??= locate(y, path, { key }));
  return {
    file: y.file,
    get line() {
      return get().line;
    },
    get column() {
      return get().column;
    },
    source: y.text,
  };
}
