// Reading a sweep file (--sweep-file): its YAML, and where each key is for diagnostics. Its shape is checked by
// the sweep module (src/plan/sweep.ts), which also reads a pipeline's own sweep: section.
import { resolve } from 'node:path';
import { FacepipeError, type Diagnostic } from '../core/errors.js';
import { at, readSettingsText } from './files.js';
import { parseYaml, type YamlFile } from './yaml.js';

export interface SweepSource {
  raw: unknown;
  /** Where a value is (or its key, with `key`), for diagnostics. */
  where: (path: string[], opts?: { key?: boolean }) => Partial<Diagnostic>;
}

/** Positions inside `yaml` below `prefix` (e.g. ['sweep'] for a pipeline's section). */
export function sweepWhere(yaml: YamlFile, prefix: string[]): SweepSource['where'] {
  // Lazy: positions need the full YAML parse, and only errors read them.
  return (p, o) => at(yaml, [...prefix, ...p], o?.key);
}

/** A sweep file holds the sweep mapping itself, or a `sweep:` key holding it. */
export function readSweepFile(workspace: string, given: string): SweepSource {
  const { file, text, diagnostic } = readSettingsText(workspace, resolve(workspace, given), 'sweep file');
  if (text === undefined) throw new FacepipeError(diagnostic!);
  const { yaml, diagnostics } = parseYaml(file, text);
  if (!yaml) throw new FacepipeError(diagnostics);
  const inner = (yaml.value as { sweep?: unknown })?.sweep !== undefined;
  return {
    raw: inner ? (yaml.value as { sweep: unknown }).sweep : yaml.value,
    where: sweepWhere(yaml, inner ? ['sweep'] : []),
  };
}
