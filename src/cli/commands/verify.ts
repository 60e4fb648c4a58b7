// facepipe verify A B [--model DIR] [--threshold X]: the same person or not, by the model's own evaluate threshold.
// Exit codes, for scripts (as cmp and diff): 0 same person, 1 different people, 2 bad input (an unreadable image, no
// model, no threshold, a bad option), 3 any other failure.
import { FacepipeError, formatError } from '../../core/errors.js';
import { embedImages, type EmbeddingOptions } from './embed.js';

export const VERIFY_SAME = 0;
export const VERIFY_DIFFERENT = 1;
export const VERIFY_FAILED = 3;

export interface VerifyOptions extends EmbeddingOptions {
  threshold?: string;
  json?: boolean;
}

function thresholdOption(text: string): number {
  const t = Number(text);
  if (text.trim() === '' || !Number.isFinite(t) || t < 0)
    throw new FacepipeError({
      code: 'bad-option',
      file: 'command line',
      message: `--threshold must be a distance >= 0, got ${text}`,
    });
  return t;
}

/** Six significant digits, whatever the embeddings' scale. */
const sig = (x: number) => String(Number(x.toPrecision(6)));

async function verify(a: string, b: string, o: VerifyOptions): Promise<number> {
  const given = o.threshold === undefined ? undefined : thresholdOption(o.threshold);
  const e = await embedImages([a, b], o, (l) => process.stderr.write(`${l}\n`));
  const figures = e.model.figures;
  if (given === undefined && !figures)
    throw new FacepipeError({
      code: 'no-threshold',
      file: e.model.label,
      message: `no evaluate result for this model in the workspace, so no threshold`,
      hint: 'run the pipeline (facepipe run; a cached evaluate is restored at once), or give one with --threshold X',
    });
  const threshold = given ?? figures!.threshold;
  const from = given !== undefined ? '--threshold' : `${figures!.thresholdSource}, ${figures!.file}`;
  let s = 0;
  for (let d = 0; d < e.dim; d++) s += (e.rows[0][d] - e.rows[1][d]) ** 2;
  const distance = Math.sqrt(s);
  // evaluate's rule: distance > threshold predicts different people.
  const same = !(distance > threshold);
  if (o.json)
    process.stdout.write(
      JSON.stringify({ image1: a, image2: b, distance, threshold, threshold_from: from, same, model: e.model.label }) +
        '\n',
    );
  else
    process.stdout.write(
      `distance  ${sig(distance)}\nthreshold ${sig(threshold)} (${from})\n${same ? 'same' : 'different'}\n`,
    );
  return same ? VERIFY_SAME : VERIFY_DIFFERENT;
}

/** Bad input keeps its exit code 2 (an interrupt its 130); any other error is 3, never 1, which means "different". */
export async function verifyCommand(a: string, b: string, o: VerifyOptions): Promise<number> {
  try {
    return await verify(a, b, o);
  } catch (e) {
    if (e instanceof FacepipeError && e.exitCode !== 1) throw e;
    process.stderr.write(formatError(e) + '\n');
    return VERIFY_FAILED;
  }
}
