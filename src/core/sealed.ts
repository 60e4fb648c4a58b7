// JSON files that carry a digest of their own content. Every file under .facepipe/ that can change what runs or
// what is reported is written this way, so an edited, truncated or swapped file is seen and treated as absent
// (with a warning naming it), never trusted. The digest covers the exact text of the value, so reading costs one
// sha256 and one JSON.parse, and a value is stored as JSON.stringify wrote it (NaN as null, as anywhere in JSON).
import { readFileSync } from 'node:fs';
import { sha256 } from './hash.js';
import { writeFileAtomic } from './fsutil.js';

const FORMAT = 'facepipe-sealed-1';
const HEAD = /^\{"format":"facepipe-sealed-1","digest":"([0-9a-f]{64})","value":/;

/** The file text: `{"format":..., "digest": sha256(valueText), "value": valueText}`. */
export function sealJson(value: unknown, space?: number): string {
  const text = JSON.stringify(value ?? null, null, space);
  return `{"format":"${FORMAT}","digest":"${sha256(text)}","value":${text}}`;
}

export type Unsealed = { ok: true; value: unknown } | { ok: false; why: string };

export function unsealJson(text: string): Unsealed {
  const body = text.trimEnd();
  const m = HEAD.exec(body);
  if (!m || !body.endsWith('}')) return { ok: false, why: 'not a sealed facepipe state file' };
  const valueText = body.slice(m[0].length, -1);
  if (sha256(valueText) !== m[1]) return { ok: false, why: 'its content does not match its digest' };
  try {
    return { ok: true, value: JSON.parse(valueText) as unknown };
  } catch {
    return { ok: false, why: 'unreadable JSON' };
  }
}

export type SealedRead<T> = { state: 'absent' } | { state: 'ok'; value: T } | { state: 'bad'; why: string };

/**
 * Read a sealed file and check its value's shape with `valid` (a small schema as a type guard). A file that is
 * missing reads as absent; one that cannot be read, is not sealed, does not match its digest or has the wrong
 * shape reads as bad, with the reason.
 */
export function readSealed<T>(path: string, valid: (v: unknown) => v is T): SealedRead<T> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'absent' };
    return { state: 'bad', why: (e as Error).message };
  }
  const u = unsealJson(text);
  if (!u.ok) return { state: 'bad', why: u.why };
  if (!valid(u.value)) return { state: 'bad', why: 'its content has the wrong shape' };
  return { state: 'ok', value: u.value };
}

export function writeSealed(path: string, value: unknown, opts: { durable?: boolean; space?: number } = {}): void {
  writeFileAtomic(path, sealJson(value, opts.space), { durable: opts.durable });
}

export const isSha256 = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);
