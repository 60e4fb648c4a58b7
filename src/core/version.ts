// Versions for run records and --version, read from package.json files without loading any package.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from './package-root.js';

/** A dependency's version from its package.json, without loading the package. */
export function packageVersion(name: string): string | undefined {
  try {
    return (
      JSON.parse(readFileSync(join(packageRoot(), 'node_modules', name, 'package.json'), 'utf8')) as {
        version: string;
      }
    ).version;
  } catch {
    return undefined;
  }
}

let cachedVersion: string | undefined;
export function facepipeVersion(): string {
  if (!cachedVersion) {
    try {
      cachedVersion = (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string })
        .version;
    } catch {
      cachedVersion = 'unknown';
    }
  }
  return cachedVersion;
}
