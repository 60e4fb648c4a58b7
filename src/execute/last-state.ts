// What each stage of an experiment last ran with (.facepipe/state/last/<experiment>.json): the key and its
// material, so that a rerun can say what changed. The one module that reads and writes these files; a file of
// the wrong shape is treated as absent, with a warning, never trusted.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KeyMaterial } from '../contracts/records.js';
import { writeFileAtomic } from '../core/fsutil.js';
import { isPlainObject } from '../core/objects.js';
import type { Workspace } from './workspace.js';

export type LastState = Record<string, { key: string; material: KeyMaterial }>;

function isMaterial(v: unknown): v is KeyMaterial {
  return (
    isPlainObject(v) &&
    typeof v.kind === 'string' &&
    typeof v.kindVersion === 'string' &&
    isPlainObject(v.params) &&
    isPlainObject(v.inputs) &&
    Object.values(v.inputs).every((d) => typeof d === 'string')
  );
}

function isLastState(v: unknown): v is LastState {
  return (
    isPlainObject(v) &&
    Object.values(v).every((e) => isPlainObject(e) && typeof e.key === 'string' && isMaterial(e.material))
  );
}

function readFile(path: string, warn: (message: string) => void): LastState {
  if (!existsSync(path)) return {};
  try {
    const v: unknown = JSON.parse(readFileSync(path, 'utf8'));
    if (isLastState(v)) return v;
  } catch {
    /* reported below */
  }
  warn(`ignoring ${path}: not a valid last-state file (rerun reasons may say "never run" once)`);
  return {};
}

export function readLastState(ws: Workspace, experiment: string, warn: (message: string) => void): LastState {
  return readFile(ws.lastStatePath(experiment), warn);
}

export function writeLastState(ws: Workspace, experiment: string, state: LastState): void {
  writeFileAtomic(ws.lastStatePath(experiment), JSON.stringify(state), { durable: false });
}

/** Every experiment's last state (gc keeps what they reference). */
export function allLastStates(ws: Workspace, warn: (message: string) => void): LastState[] {
  const dir = ws.lastStateDir;
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => readFile(join(dir, f), warn));
}
