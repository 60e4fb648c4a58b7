// ajv set-up and the translation of its errors into positioned diagnostics.
import type { Ajv, ErrorObject, ValidateFunction } from 'ajv';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { sourceDir } from '../core/source-dir.js';
import { hashValue } from '../core/hash.js';
import { didYouMean, type Diagnostic } from '../core/errors.js';

export const ajvOptions = { allErrors: true, useDefaults: true, verbose: true, strict: false } as const;

let ajv: Ajv | undefined;
const compiled = new WeakMap<object, ValidateFunction>();

/** Precompiled validators (scripts/build-validators.mjs), by schema hash; loading ajv costs ~100 ms. */
let precompiled: Record<string, ValidateFunction> | undefined;
try {
  precompiled = (await import(pathToFileURL(join(sourceDir, 'load', 'validators.generated.js')).href)) as Record<
    string,
    ValidateFunction
  >;
} catch {
  precompiled = {};
}

export function validator(schema: object): ValidateFunction {
  let v = compiled.get(schema);
  if (!v) {
    v = precompiled?.['v' + hashValue(schema).slice(0, 16)];
    if (!v) {
      // Loaded lazily and synchronously (ajv is CommonJS): only schemas missing from the build pay for it.
      ajv ??= new (createRequire(import.meta.url)('ajv') as { Ajv: typeof Ajv }).Ajv(ajvOptions);
      v = ajv.compile(schema);
    }
    compiled.set(schema, v);
  }
  return v;
}

export interface SchemaIssue {
  /** Path of the offending value (for unknown keys: of the key itself). */
  path: string[];
  /** True when the diagnostic should point at the key rather than the value. */
  atKey: boolean;
  message: string;
  hint?: string;
  code: string;
}

/** One ajv error as an issue with a plain message, or undefined when another error says it better. */
function issueOf(e: ErrorObject, path: string[], label: (path: string[]) => string): SchemaIssue | undefined {
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String((e.params as { additionalProperty: string }).additionalProperty);
      const known = Object.keys((e.parentSchema as { properties?: object })?.properties ?? {});
      const guess = didYouMean(key, known);
      return {
        code: 'unknown-key',
        path: [...path, key],
        atKey: true,
        message: `unknown key '${key}'${path.length ? ` in ${label(path)}` : ''}`,
        hint: guess ? `did you mean '${guess}'?` : known.length ? `known keys: ${known.join(', ')}` : 'remove it',
      };
    }
    case 'required': {
      const key = String((e.params as { missingProperty: string }).missingProperty);
      return {
        code: 'missing-key',
        path,
        atKey: false,
        message: `missing required key '${key}'${path.length ? ` in ${label(path)}` : ''}`,
        hint: `add '${key}:'`,
      };
    }
    case 'type': {
      const want = String((e.params as { type: string | string[] }).type);
      return {
        code: 'wrong-type',
        path,
        atKey: false,
        message: `${label(path)} must be ${article(want)}, got ${describe(e.data)}`,
      };
    }
    case 'enum': {
      const allowed = (e.params as { allowedValues: unknown[] }).allowedValues;
      const guess = typeof e.data === 'string' ? didYouMean(e.data, allowed.map(String)) : undefined;
      return {
        code: 'bad-value',
        path,
        atKey: false,
        message: `${label(path)} must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}, got ${describe(e.data)}`,
        hint: guess ? `did you mean ${JSON.stringify(guess)}?` : undefined,
      };
    }
    case 'propertyNames':
      return undefined; // reported by the 'pattern' error that follows
    case 'pattern': {
      const name = e.propertyName ?? e.data;
      // A schema may word its pattern for people: x-pattern-message, x-hint.
      const own = e.parentSchema as { 'x-pattern-message'?: string; 'x-hint'?: string } | undefined;
      if (own?.['x-pattern-message'] && e.propertyName === undefined) {
        return {
          code: 'bad-value',
          path,
          atKey: false,
          message: `${label(path)} ${own['x-pattern-message']}, got ${describe(e.data)}`,
          hint: own['x-hint'],
        };
      }
      return {
        code: 'bad-name',
        path: e.propertyName !== undefined ? [...path, e.propertyName] : path,
        atKey: e.propertyName !== undefined,
        message: `${e.propertyName !== undefined ? 'name' : label(path)} ${JSON.stringify(name)} does not match ${(e.params as { pattern: string }).pattern}`,
        hint: 'use letters, digits, "_" and "-", starting with a letter; at most 64 characters',
      };
    }
    default:
      return {
        code: 'bad-value',
        path,
        atKey: false,
        message: `${label(path)} ${e.message ?? 'is invalid'}${e.data !== undefined && typeof e.data !== 'object' ? `, got ${describe(e.data)}` : ''}`,
      };
  }
}

/** Turn ajv errors into issues with plain messages; drops anyOf/oneOf noise when a clearer error exists. */
export function schemaIssues(
  errors: ErrorObject[] | null | undefined,
  label: (path: string[]) => string,
): SchemaIssue[] {
  if (!errors) return [];
  const out: SchemaIssue[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    if (e.keyword === 'anyOf' || e.keyword === 'oneOf' || e.keyword === 'if') continue;
    const path = e.instancePath
      .split('/')
      .slice(1)
      .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
    const issue = issueOf(e, path, label);
    if (!issue) continue;
    const k = issue.code + issue.path.join('.') + issue.message;
    if (!seen.has(k)) {
      seen.add(k);
      out.push(issue);
    }
  }
  return out;
}

function article(type: string): string {
  const t = type.replace(/,/g, ' or ');
  return /^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`;
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
  return `${typeof v} ${(v as string | number | boolean | bigint | symbol | undefined)?.toString()}`;
}

export type { Diagnostic };
