// What each stage of an experiment last ran with (.facepipe/state/last/<experiment>.json): the key and its
// material, so that a rerun can say what changed. The one module that reads and writes these files. They are
// sealed (a digest of their own content) and checked against a small schema: an edited file or one of the wrong
// shape is treated as absent, with a warning, never trusted.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { KeyMaterial } from '../contracts/records.js';
import { displayPath } from '../core/fsutil.js';
import { isPlainObject } from '../core/objects.js';
import { readSealed, writeSealed } from '../core/sealed.js';
import { isKeyMaterial } from './store/store.js';
import type { Workspace } from './workspace.js';

export type LastState = Record<string, { key: string; material: KeyMaterial }>;

function isLastState(v: unknown): v is LastState {
  return (
    isPlainObject(v) &&
    Object.values(v).every((e) => isPlainObject(e) && typeof e.key === 'string' && isKeyMaterial(e.material))
  );
}

function readFile(ws: Workspace, path: string, warn: (message: string) => void): LastState {
  const r = readSealed(path, isLastState);
  if (r.state === 'ok') return r.value;
  if (r.state === 'bad')
    warn(`ignoring ${displayPath(ws.root, path)}: ${r.why} (rerun reasons may say "never run" once)`);
  return {};
}

export function readLastState(ws: Workspace, experiment: string, warn: (message: string) => void): LastState {
  return readFile(ws, ws.lastStatePath(experiment), warn);
}

export function writeLastState(ws: Workspace, experiment: string, state: LastState): void {
  writeSealed(ws.lastStatePath(experiment), state, { durable: false });
}

/** Every experiment's last state (gc keeps what they reference). */
export function allLastStates(ws: Workspace, warn: (message: string) => void): LastState[] {
  const dir = ws.lastStateDir;
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => readFile(ws, join(dir, f), warn));
}
