// Which model `facepipe embed` / `verify` use, and that model's evaluate figures (the threshold, flip averaging).
// Both come from the run records (results/runs/<id>/run.json, newest first): the default model is the newest
// completed prune stage's output; its figures are those of an evaluate stage whose model input had the model's
// content digest. Nothing there is trusted unchecked: a record of the wrong shape is skipped, and a results folder
// is used only while its content still has the digest the record names.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { FacepipeError } from '../../core/errors.js';
import { isPlainObject } from '../../core/objects.js';
import { Digests } from '../../execute/store/digests.js';

export interface EvaluateFigures {
  /** The evaluate stage's metrics.json, relative to the workspace. */
  file: string;
  threshold: number;
  /** How evaluate chose it, e.g. 'validation (equal error rate point)'. */
  thresholdSource: string;
  /** Whether evaluate averaged each embedding with its mirror image's (embed and verify then do too). */
  flipAverage: boolean;
}

export interface DeployedModel {
  /** Absolute path of the model folder (model.onnx, model.json + weights). */
  dir: string;
  /** How to name it to people: relative to the workspace when inside it. */
  label: string;
  /** The figures of an evaluate run on exactly this model, when the workspace has one. */
  figures?: EvaluateFigures;
}

interface StageResultLike {
  experiment: string;
  stage: string;
  kind: string;
  state: string;
  inputs: Record<string, string>;
  outputs: Record<string, { digest: string }>;
}

function isStageResult(v: unknown): v is StageResultLike {
  return (
    isPlainObject(v) &&
    typeof v.experiment === 'string' &&
    typeof v.stage === 'string' &&
    typeof v.kind === 'string' &&
    typeof v.state === 'string' &&
    isPlainObject(v.inputs) &&
    isPlainObject(v.outputs) &&
    Object.values(v.outputs).every((o) => isPlainObject(o) && typeof o.digest === 'string')
  );
}

const completed = (s: StageResultLike) => s.state === 'done' || s.state === 'cached';

/** The stage results of every readable run record, newest run first. */
function runRecords(root: string): Array<{ id: string; stages: StageResultLike[] }> {
  const dir = join(root, 'results', 'runs');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort()
    .reverse()
    .flatMap((id) => {
      try {
        const rec: unknown = JSON.parse(readFileSync(join(dir, id, 'run.json'), 'utf8'));
        const stages = isPlainObject(rec) && Array.isArray(rec.stages) ? rec.stages.filter(isStageResult) : [];
        return [{ id, stages }];
      } catch {
        return [];
      }
    });
}

const badInput = (code: string, message: string, hint: string) =>
  new FacepipeError({ code, file: 'command line', message, hint });

/** A stage output in results/ while it still holds what the record says (a later run may have replaced it). */
async function placed(
  root: string,
  s: StageResultLike,
  output: string,
  digests: Digests,
): Promise<{ path: string; rel: string; intact: boolean } | undefined> {
  const rel = join('results', s.experiment, s.stage, output);
  const path = join(root, rel);
  if (!existsSync(path)) return undefined;
  return { path, rel, intact: (await digests.pathDigest(path)).digest === s.outputs[output].digest };
}

/** The model folder and its evaluate figures: `--model DIR`, or the newest completed prune stage's model. */
export async function findDeployedModel(root: string, modelArg: string | undefined): Promise<DeployedModel> {
  const digests = new Digests();
  const records = runRecords(root);
  let dir: string;
  let digest: string;
  if (modelArg !== undefined) {
    dir = resolve(modelArg);
    if (!existsSync(dir) || !statSync(dir).isDirectory())
      throw badInput(
        'model-missing',
        `--model ${modelArg}: no such folder`,
        "name a prune stage's model folder, e.g. results/face-verification/prune/model",
      );
    digest = (await digests.pathDigest(dir)).digest;
  } else {
    const found = await newestPruned(root, records, digests);
    dir = found.dir;
    digest = found.digest;
  }
  const rel = relative(root, dir);
  const label = rel.startsWith('..') ? dir : rel;
  return { dir, label, figures: await evaluateFigures(root, records, digest, digests) };
}

async function newestPruned(
  root: string,
  records: ReturnType<typeof runRecords>,
  digests: Digests,
): Promise<{ dir: string; digest: string }> {
  for (const r of records) {
    const pruned = r.stages.filter((s) => s.kind === 'prune' && completed(s) && s.outputs.model);
    if (pruned.length === 0) continue;
    if (pruned.length > 1)
      throw badInput(
        'model-ambiguous',
        `the newest run with a model (${r.id}) made ${pruned.length}: ${pruned.map((s) => `results/${s.experiment}/${s.stage}/model`).join(', ')}`,
        'pick one with --model DIR',
      );
    const s = pruned[0];
    const out = await placed(root, s, 'model', digests);
    if (!out?.intact)
      throw badInput(
        'model-changed',
        `results/${s.experiment}/${s.stage}/model ${out ? 'no longer holds' : 'is gone, and held'} the model run ${r.id} made`,
        `rerun facepipe run for experiment ${s.experiment} (it restores the cached model), or pass --model DIR`,
      );
    return { dir: out.path, digest: s.outputs.model.digest };
  }
  throw badInput(
    'no-model',
    `no trained model in ${root}: no run record under results/runs names a completed prune stage`,
    'run the pipeline first (facepipe run), or pass --model DIR',
  );
}

/** The figures of the newest completed evaluate stage whose model input had this digest, if its report is intact. */
async function evaluateFigures(
  root: string,
  records: ReturnType<typeof runRecords>,
  digest: string,
  digests: Digests,
): Promise<EvaluateFigures | undefined> {
  for (const r of records) {
    for (const s of r.stages) {
      if (s.kind !== 'evaluate' || !completed(s) || s.inputs.model !== digest || !s.outputs.report) continue;
      const out = await placed(root, s, 'report', digests);
      if (!out?.intact) continue;
      const file = join(out.rel, 'metrics.json');
      const m: unknown = JSON.parse(readFileSync(join(root, file), 'utf8'));
      const t = isPlainObject(m) ? m.threshold : undefined;
      if (!isPlainObject(m) || !isPlainObject(t) || typeof t.value !== 'number') continue;
      return {
        file,
        threshold: t.value,
        thresholdSource: typeof t.source === 'string' ? t.source : 'evaluate',
        flipAverage: m.flip_average === true,
      };
    }
  }
  return undefined;
}
