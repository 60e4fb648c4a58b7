// The compiled source folder (dist/src/ when built, src/ under tsx), found from this module's own location.
// Modules that find sibling files at run time (the stage-kind folders, the precompiled validators, the local
// worker's entry) ask here rather than their own import.meta.url: the CLI's start path is bundled into
// dist/src/cli/ (scripts/bundle-cli.mjs), and this module stays outside the bundle, so its location holds.
import { fileURLToPath } from 'node:url';

export const sourceDir: string = fileURLToPath(new URL('..', import.meta.url));
