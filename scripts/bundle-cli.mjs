// Build step: bundle the CLI (dist/src/cli/main.js and what it imports: loading, planning, the runner, the
// commands) into one file, written over dist/src/cli/main.js. A no-op rerun is mostly
// Node's module loading, and about 60 small modules cost more to resolve, read and link than a few larger ones
// (npm run bench:engine). Left outside, as modules of dist/src: npm packages, ml/ (stage runs and embed load it,
// with worker entries found from their own location), the Slurm executor (its job entry likewise) and
// core/source-dir.js (the one module the bundled code asks where dist/src is). Every dynamic import stays lazy:
// an npm package a bundled module imports statically would load at every start, so those are required on use.
import { build } from 'esbuild';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const src = resolve(fileURLToPath(new URL('../dist/src/', import.meta.url)));
const outdir = join(src, 'cli');
const outside = [
  join(src, 'ml') + sep,
  join(src, 'execute', 'executors', 'slurm') + sep,
  join(src, 'core', 'source-dir.js'),
];

const keepOutside = {
  name: 'keep-outside',
  setup(b) {
    b.onResolve({ filter: /^\.\.?\// }, (args) => {
      const abs = resolve(args.resolveDir, args.path);
      if (!outside.some((o) => abs === o || abs.startsWith(o))) return undefined;
      // Relative to the bundle, which lies in outdir.
      const rel = relative(outdir, abs).split(sep).join('/');
      return { path: rel.startsWith('.') ? rel : `./${rel}`, external: true };
    });
  },
};

await build({
  entryPoints: [join(outdir, 'main.js')],
  outdir,
  allowOverwrite: true,
  bundle: true,
  // One file, not chunks: a dynamic import of a bundled module becomes a lazy initialiser in the same file (V8
  // compiles a function on its first call), where split chunks cost a module load each.
  splitting: false,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  sourcemap: 'linked',
  logLevel: 'warning',
  plugins: [keepOutside],
});
console.log(`bundled the CLI start path into ${relative(process.cwd(), dirname(join(outdir, 'main.js')))}/`);
