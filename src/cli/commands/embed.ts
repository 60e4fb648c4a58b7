// facepipe embed IMAGE... [--model DIR] [--out FILE]: embeddings of image files with a trained model, written as CSV
// (default, to stdout), JSON or .npy by the output's extension. The ML modules load only here (and TF.js only when
// onnxruntime-node is missing), so the rest of the CLI stays fast to start.
import { writeFileSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { formatCsv } from '../../core/csv.js';
import { FacepipeError } from '../../core/errors.js';
import { npyFloat32 } from '../../core/npy.js';
import { resolveBackend } from './backend-option.js';
import { findDeployedModel, type DeployedModel } from './deployed-model.js';

export interface EmbeddingOptions {
  model?: string;
  runtime?: 'onnx' | 'tfjs';
  backend?: string;
  batchSize?: string;
  workspace?: string;
}

export interface Embedded {
  model: DeployedModel;
  runtime: string;
  flipAverage: boolean;
  dim: number;
  rows: Float32Array[];
}

const FORMATS = ['.csv', '.json', '.npy'];
const RUNTIMES = ['onnx', 'tfjs'];

function positiveInt(text: string | undefined, fallback: number, what: string): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1)
    throw new FacepipeError({
      code: 'bad-option',
      file: 'command line',
      message: `${what} must be a whole number >= 1, got ${text}`,
    });
  return n;
}

/**
 * Embeds `images` (paths as given, any format facepipe's dataset reader takes) with the deployed model, in the way its
 * evaluate stage did (flip averaging included). An unreadable image is bad input naming it (exit 2).
 */
export async function embedImages(
  images: string[],
  o: EmbeddingOptions,
  log: (line: string) => void,
): Promise<Embedded> {
  if (o.runtime !== undefined && !RUNTIMES.includes(o.runtime))
    throw new FacepipeError({
      code: 'bad-option',
      file: 'command line',
      message: `unknown runtime '${String(o.runtime)}'`,
      hint: 'use --runtime onnx or --runtime tfjs (unset: onnx when onnxruntime-node is installed)',
    });
  const batchSize = positiveInt(o.batchSize, 64, '--batch-size');
  const backend = resolveBackend(o.backend, 'auto');
  const root = resolve(o.workspace ?? process.cwd());
  const model = await findDeployedModel(root, o.model);
  const flipAverage = model.figures?.flipAverage ?? false;
  const [{ openEvalModel }, { embedFiles }, { ImageReadError }] = await Promise.all([
    import('../../ml/eval/inference-model.js'),
    import('../../ml/eval/embed.js'),
    import('../../ml/data/image.js'),
  ]);
  let opened;
  try {
    opened = await openEvalModel(model.dir, o.runtime, backend, log, '--runtime');
  } catch (e) {
    throw new FacepipeError({
      code: 'bad-model',
      file: model.label,
      message: (e as Error).message,
      hint: "--model names a prune stage's model folder (model.onnx, model.json + weights)",
    });
  }
  try {
    const opts = { inputSize: opened.inputSize, batchSize, flipAverage };
    // Paths as the user gave them (embedFiles joins the root '' with each: relative paths stay relative to the cwd).
    const { dim, rows } = await embedFiles(opened.embedder, '', images, opts).catch((e: unknown) => {
      if (!(e instanceof ImageReadError)) throw e;
      throw new FacepipeError({
        code: 'bad-image',
        file: e.file,
        message: e.message,
        hint: 'facepipe reads PNG, JPEG, WebP, GIF, TIFF, AVIF (through sharp) and PGM / PPM',
      });
    });
    return { model, runtime: opened.detail, flipAverage, dim, rows };
  } finally {
    await opened.dispose();
  }
}

/** The bytes or text of the output, by the file's extension (CSV when there is no file). */
function render(format: string, images: string[], e: Embedded): string | Uint8Array {
  if (format === '.npy') {
    const values = new Float32Array(e.rows.length * e.dim);
    e.rows.forEach((r, i) => values.set(r, i * e.dim));
    return npyFloat32(values, e.rows.length, e.dim);
  }
  if (format === '.json')
    return (
      JSON.stringify(
        {
          model: e.model.label,
          runtime: e.runtime,
          flip_average: e.flipAverage,
          dim: e.dim,
          embeddings: images.map((image, i) => ({ image, embedding: Array.from(e.rows[i]) })),
        },
        null,
        1,
      ) + '\n'
    );
  const header = ['image', ...Array.from({ length: e.dim }, (_, d) => `e${d}`)];
  return formatCsv([header, ...images.map((image, i) => [image, ...Array.from(e.rows[i], String)])]);
}

export async function embedCommand(images: string[], o: EmbeddingOptions & { out?: string }): Promise<number> {
  const format = o.out === undefined ? '.csv' : extname(o.out).toLowerCase();
  if (!FORMATS.includes(format))
    throw new FacepipeError({
      code: 'bad-option',
      file: 'command line',
      message: `--out ${o.out}: unknown format '${format || '(no extension)'}'`,
      hint: 'name the file .csv, .json or .npy (rows follow the order of the images)',
    });
  const e = await embedImages(images, o, (l) => process.stderr.write(`${l}\n`));
  const out = render(format, images, e);
  if (o.out === undefined) process.stdout.write(out);
  else {
    writeFileSync(o.out, out);
    process.stderr.write(
      `${images.length} embeddings (${e.dim}-d, ${e.model.label}, ${e.runtime}${e.flipAverage ? ', flip-averaged' : ''}) -> ${o.out}\n`,
    );
  }
  return 0;
}
