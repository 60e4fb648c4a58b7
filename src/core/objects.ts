// Plain-object helpers shared by every layer (loading, keys, sweeps). Keys that reach an object's prototype
// (__proto__, constructor, prototype) are refused where input is read (YAML files, --set, sweeps: see
// prototypeKeyPaths), and merged objects are built with own-property definitions, so that no input can
// pollute or replace a prototype even if such a key slipped through.

/** Keys no config, param path or sweep may use. */
export const PROTOTYPE_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Set an own property, also for a key like __proto__ (plain assignment would set the prototype instead). */
export function defineOwn(o: Record<string, unknown>, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/** Objects merge key by key; lists and scalars replace. */
export function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(base)) defineOwn(out, k, v);
  for (const [k, v] of Object.entries(over)) {
    const prev = Object.prototype.hasOwnProperty.call(out, k) ? out[k] : undefined;
    defineOwn(out, k, isPlainObject(v) && isPlainObject(prev) ? deepMerge(prev, v) : structuredClone(v));
  }
  return out;
}

/** Where a value holds a prototype key (paths to the keys), for diagnostics. */
export function prototypeKeyPaths(value: unknown, path: Array<string | number> = []): Array<Array<string | number>> {
  if (Array.isArray(value)) return value.flatMap((v, i) => prototypeKeyPaths(v, [...path, i]));
  if (!isPlainObject(value)) return [];
  return Object.keys(value).flatMap((k) => [
    ...(PROTOTYPE_KEYS.has(k) ? [[...path, k]] : []),
    ...prototypeKeyPaths(value[k], [...path, k]),
  ]);
}

/** Where a value holds a number that is not finite (.inf, .nan in YAML), which no param may be. */
export function nonFinitePaths(value: unknown, path: Array<string | number> = []): Array<Array<string | number>> {
  if (typeof value === 'number') return Number.isFinite(value) ? [] : [path];
  if (Array.isArray(value)) return value.flatMap((v, i) => nonFinitePaths(v, [...path, i]));
  if (!isPlainObject(value)) return [];
  return Object.keys(value).flatMap((k) => nonFinitePaths(value[k], [...path, k]));
}
