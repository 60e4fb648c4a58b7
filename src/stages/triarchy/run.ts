import { existsSync } from 'node:fs';
import { copyFile, cp, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { hashTree } from '../../core/hash.js';
import { isPlainObject } from '../../core/objects.js';
import { isSha256, readSealed, writeSealed } from '../../core/sealed.js';
import { tensor4d, type Tensor, type Tensor2D, type Tensor4D } from '@tensorflow/tfjs-core';
import { fitMicroBatch, imagesPerBinding } from '../../ml/backend/binding-limit.js';
import { backendMetrics, initBackend } from '../../ml/backend/select.js';
import { epochIndices, makeBatchProvider } from '../../ml/data/batches.js';
import { ImageCache } from '../../ml/data/cache.js';
import { identityIndex } from '../../ml/data/dataset.js';
import { rgb8ToFloat } from '../../ml/data/image.js';
import { createRng, shuffleInPlace } from '../../ml/data/rng.js';
import { recalibrateBatchNorm } from '../../ml/eval/bn-recalibrate.js';
import { pairSetDistances, type Embedder, type FileEmbedder } from '../../ml/eval/embed.js';
import { verificationReport } from '../../ml/eval/metrics.js';
import { triarchyLoss } from '../../ml/losses/triarchy.js';
import {
  createTriarchyNet,
  ID_BN_MOMENTUM,
  loadBackboneInto,
  saveNet,
  type TriarchyNet,
} from '../../ml/model/index.js';
import { CHECKPOINT_FILE } from '../../ml/train/checkpoint.js';
import { formatEpoch, trainNet, type TrainOptions } from '../../ml/train/trainer.js';
import type { BackboneConfig, BackendName, BackendPreference } from '../../ml/types.js';
import type { StageContext, StageRun } from '../../contracts/stage-kind.js';
import { backboneConfig, learningRate } from '../shared/backbone-params.js';
import { readSplits, type Pair, type Splits } from '../shared/splits-format.js';
import { stepReporter } from '../shared/train-progress.js';
import { CHECKPOINT_SECONDS, trainingEngine, type TrainingEngine } from '../shared/training-engine.js';
import type { TriarchyParams } from './kind.js';

interface Validation {
  epoch: number;
  accuracy: number;
  auc: number;
  eer: number;
}

const SELECTION_FILE = 'selection.json';

/** Persistent state in workDir: which epochs were validated and the best so far (the best weights sit in best/). */
interface SelectionState {
  lastValidated: number;
  best: Validation | null;
  validations: Validation[];
  /** Per-epoch mean losses up to lastValidated. */
  losses: Array<{ epoch: number; loss: number; parts: Record<string, number> }>;
}

/** selection.json: the state, and which best-<epoch>/ folder holds the best weights, with their digest. */
interface SelectionFile {
  state: SelectionState;
  bestDir: string | null;
  bestDigest: string | null;
}

const num = (v: unknown) => typeof v === 'number' || v === null; // NaN is written as null
const isValidation = (v: unknown): v is Validation =>
  isPlainObject(v) && Number.isInteger(v.epoch) && num(v.accuracy) && num(v.auc) && num(v.eer);

function isSelectionFile(v: unknown): v is SelectionFile {
  if (!isPlainObject(v) || !isPlainObject(v.state)) return false;
  const st = v.state;
  return (
    Number.isInteger(st.lastValidated) &&
    (st.best === null || isValidation(st.best)) &&
    Array.isArray(st.validations) &&
    st.validations.every(isValidation) &&
    Array.isArray(st.losses) &&
    st.losses.every((l) => isPlainObject(l) && Number.isInteger(l.epoch) && num(l.loss) && isPlainObject(l.parts)) &&
    (st.best === null) === (v.bestDir === null) &&
    (v.bestDir === null || (typeof v.bestDir === 'string' && /^best-\d+$/.test(v.bestDir) && isSha256(v.bestDigest)))
  );
}

/** Remove every best-* folder of workDir but `keep`. */
async function removeBestDirs(workDir: string, keep?: string): Promise<void> {
  for (const d of await readdir(workDir).catch(() => [] as string[]))
    if (d.startsWith('best') && d !== keep) await rm(join(workDir, d), { recursive: true, force: true });
}

/**
 * The selection state to resume from. selection.json is sealed and names the digest of the best weights: a damaged
 * file, one of the wrong shape, or best weights that do not match make the stage restart from scratch (state, best
 * weights and epoch checkpoint removed), saying so, instead of resuming from something unchecked.
 */
async function resumeSelection(
  workDir: string,
  checkpointDir: string,
  log: (line: string) => void,
  restarted: () => void,
): Promise<{ state: SelectionState; bestDir: string | null; bestDigest: string | null }> {
  const fresh = {
    state: { lastValidated: -1, best: null, validations: [], losses: [] },
    bestDir: null,
    bestDigest: null,
  };
  const path = join(workDir, SELECTION_FILE);
  const r = readSealed(path, isSelectionFile);
  if (r.state === 'absent') return fresh;
  let why = r.state === 'bad' ? r.why : undefined;
  if (r.state === 'ok' && r.value.bestDir !== null) {
    const digest = await hashTree(join(workDir, r.value.bestDir)).catch(() => 'missing');
    if (digest !== r.value.bestDigest)
      why = `the best weights in ${r.value.bestDir}/ are ${digest === 'missing' ? 'missing' : 'not the ones it names'}`;
  }
  if (r.state === 'ok' && why === undefined)
    return { ...r.value, bestDir: r.value.bestDir && join(workDir, r.value.bestDir) };
  log(`warning: ignoring ${path}: ${why}; the stage restarts from scratch`);
  await rm(checkpointDir, { recursive: true, force: true });
  await removeBestDirs(workDir);
  await rm(join(workDir, EPOCH_STATE_DIR), { recursive: true, force: true });
  await rm(path, { force: true });
  restarted();
  return fresh;
}

/** Where a run whose last epoch is not a multiple of validate_every keeps its state before that last validation. */
const EPOCH_STATE_DIR = 'epoch-state';

/**
 * Epoch-prefix reuse: the scratch folder as a longer run would have it after this run's last epoch: the epoch
 * checkpoint, and the selection state of the validations at multiples of validate_every (a longer run does not
 * validate after this run's last epoch unless it is one), with the best weights it names. A run with more epochs
 * starts from it in its own scratch folder, which it checks as it checks its own (digests and seals).
 */
async function writeEpochState(
  dest: string,
  checkpointDir: string,
  selection: { state: SelectionState; bestDir: string | null; bestDigest: string | null },
): Promise<void> {
  const checkpoint = join(checkpointDir, CHECKPOINT_FILE);
  if (!existsSync(checkpoint)) return; // no epoch trained
  const tmp = `${dest}.tmp`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(join(tmp, 'checkpoint'), { recursive: true });
  await copyFile(checkpoint, join(tmp, 'checkpoint', CHECKPOINT_FILE));
  const bestName = selection.bestDir && basename(selection.bestDir);
  if (selection.bestDir) await cp(selection.bestDir, join(tmp, bestName!), { recursive: true });
  writeSealed(join(tmp, SELECTION_FILE), {
    state: selection.state,
    bestDir: bestName,
    bestDigest: selection.bestDigest,
  } satisfies SelectionFile);
  await rm(dest, { recursive: true, force: true });
  await rename(tmp, dest);
}

/** Epochs after which to validate: every `every` epochs and after the last (0 when there is no training). */
export function validationEpochs(epochs: number, every: number): number[] {
  const out: number[] = [];
  for (let e = every; e < epochs; e += every) out.push(e);
  out.push(epochs);
  return out;
}

async function validate(
  net: Embedder | FileEmbedder,
  root: string,
  pairs: Pair[],
  inputSize: number,
  flipAverage: boolean,
  cache: ImageCache,
  signal: AbortSignal,
): Promise<Omit<Validation, 'epoch'>> {
  // Small chunks: the workers take them in turn, so a few hundred images split evenly (64 would leave 94 as 64 + 30).
  const dist = await pairSetDistances(net, root, pairs, { inputSize, batchSize: 16, flipAverage, cache, signal });
  const r = verificationReport(
    dist,
    pairs.map((p) => p.different),
  );
  return { accuracy: r.accuracy_median, auc: r.auc, eer: r.eer };
}

/** Precise BN over all training images (no augmentation), in seeded random batches of the training batch size. */
async function recalibrate(
  net: TriarchyNet,
  root: string,
  files: string[],
  size: number,
  batchSize: number,
  seed: string,
  momentum: number,
  cache: ImageCache,
): Promise<void> {
  const order = shuffleInPlace(
    createRng(seed),
    files.map((_, i) => i),
  );
  // On webgpu no tensor may exceed the adapter's binding limit: then smaller batches (more of them).
  const bs = Math.min(batchSize, files.length, imagesPerBinding(net) ?? batchSize);
  async function* batches(): AsyncGenerator<Tensor4D> {
    for (let i = 0; i + bs <= order.length; i += bs) {
      const per = size * size * 3;
      const data = new Float32Array(bs * per);
      for (let j = 0; j < bs; j++)
        rgb8ToFloat(await cache.get(join(root, files[order[i + j]]), { width: size, height: size }), data, j * per);
      yield tensor4d(data, [bs, size, size, 3]);
    }
  }
  await recalibrateBatchNorm(net, batches(), (name) => (name.startsWith('backbone/') ? momentum : ID_BN_MOMENTUM));
}

type Ctx = StageContext<TriarchyParams>;

/** Loads the pretext stage's backbone into the net (init: pretext). */
async function initFromPretext(ctx: Ctx, net: TriarchyNet): Promise<void> {
  const dir = ctx.inputs.pretext;
  if (!dir)
    throw new Error(
      "triarchy.init is 'pretext' but the input 'pretext' is not wired; wire it to pretext.backbone or set init: scratch",
    );
  try {
    const n = await loadBackboneInto(net, dir);
    ctx.log(`initialised ${n} backbone variables from the pretext stage`);
  } catch (e) {
    throw new Error(`${(e as Error).message}; set triarchy.backbone width/depth equal to pretext.backbone`, {
      cause: e,
    });
  }
}

/** What every training chunk and validation of a run shares. */
interface Session {
  ctx: Ctx;
  net: TriarchyNet;
  splits: Splits;
  /** Training identities (the identity head's classes). */
  identities: number;
  cfg: BackboneConfig;
  cache: ImageCache;
  /** Where the steps run (sharded worker threads, or this process); validation embeds there too. */
  steps: TrainingEngine;
  /** trainNet's options but the epoch to train up to. */
  train: Omit<TrainOptions, 'epochs'>;
  say: (line: string) => void;
}

/** The net, its batches, its loss and the engine of its steps. */
async function startSession(ctx: Ctx, backend: BackendName, splits: Splits): Promise<Session> {
  const p = ctx.params;
  const train = splits.train;
  const ids = identityIndex(train);
  const P = p.sampler.identities;
  if (ids.size < P) {
    throw new Error(
      `the split has ${ids.size} training identities but triarchy.sampler.identities (P) is ${P}; lower P or give training more identities`,
    );
  }
  const cfg = backboneConfig(p.backbone);
  const netOptions = { backbone: cfg, embeddingDim: p.embedding_dim, numClasses: ids.size, seed: p.seed };
  const net = createTriarchyNet(netOptions);
  let steps: TrainingEngine | undefined;
  try {
    if (p.init === 'pretext') await initFromPretext(ctx, net);
    const cache = new ImageCache();
    const batchOptions = {
      root: ctx.inputs.dataset,
      items: train,
      labels: { identity: train.map((t) => ids.get(t.identity)!) },
      sampler: { kind: 'pk' as const, p: P, k: p.sampler.images },
      size: { width: cfg.inputSize, height: cfg.inputSize },
      augment: { flip: p.augment.flip },
      cache,
    };
    const batchSize = P * p.sampler.images;
    steps = await trainingEngine({
      ctx,
      backend,
      spec: { kind: 'triarchy', options: netOptions },
      shards: p.shards,
      microBatch: p.micro_batch,
      batchSize,
    });
    const lossCfg = {
      epsilon: p.loss.label_smoothing,
      margin: p.loss.margin,
      weights: { id: p.loss.weights.identity, tri: p.loss.weights.triplet, ctr: p.loss.weights.center },
    };
    const say = (line: string) => {
      ctx.log(line);
      ctx.progress(line);
    };
    const trainOptions: Omit<TrainOptions, 'epochs'> = {
      net,
      batches: steps.arrange(makeBatchProvider(batchOptions)),
      loss: (out, batch) =>
        triarchyLoss(
          out as { embedding: Tensor; logits: Tensor },
          batch.labels.identity,
          net.centers as unknown as Tensor2D,
          lossCfg,
        ),
      lr: p.optimizer.lr,
      milestones: p.optimizer.milestones,
      gamma: p.optimizer.gamma,
      lrAt: learningRate(p.optimizer, p.epochs),
      seed: p.seed,
      checkpointDir: join(ctx.workDir, 'checkpoint'),
      checkpointSeconds: CHECKPOINT_SECONDS,
      onWarning: (m) => {
        say(`warning: ${m}`);
        ctx.epochState?.restarted();
      },
      microBatch: fitMicroBatch(steps.microBatch, batchSize, net, (l) => ctx.log(l)),
      engine: steps.engine,
      signal: ctx.signal,
      // Every epoch has as many batches (floor(identities / P)), whatever the RNG draws.
      onStep: stepReporter(ctx, epochIndices(batchOptions, createRng('steps')).length, p.epochs),
      onEpoch: (e) => ctx.log(formatEpoch({ ...e, epochs: p.epochs })),
    };
    return { ctx, net, splits, identities: ids.size, cfg, cache, steps, train: trainOptions, say };
  } catch (e) {
    await steps?.engine?.close();
    net.dispose();
    throw e;
  }
}

/** Validation after epoch `target` (BatchNorm re-estimated first with recalibrate_bn). */
async function validateAt(s: Session, target: number): Promise<Validation> {
  const { ctx, net, cfg } = s;
  const p = ctx.params;
  const root = ctx.inputs.dataset;
  if (p.recalibrate_bn) {
    ctx.progress(`epoch ${target}/${p.epochs}, re-estimating BatchNorm statistics`);
    await recalibrate(
      net,
      root,
      s.splits.train.map((t) => t.file),
      cfg.inputSize,
      p.sampler.identities * p.sampler.images,
      `${p.seed}:bn:${target}`,
      cfg.bnMomentum,
      s.cache,
    );
  }
  ctx.progress(`epoch ${target}/${p.epochs}, validating`);
  // The workers embed with the weights here (recalibrated or not).
  const engine = s.steps.engine;
  engine?.pushWeights(net.trainableVariables(), net.stateVariables());
  const figures = await validate(
    engine ?? net,
    root,
    s.splits.validation,
    cfg.inputSize,
    p.flip_average,
    s.cache,
    ctx.signal,
  );
  return { epoch: target, ...figures };
}

interface Selection {
  state: SelectionState;
  bestDir: string | null;
  bestDigest: string | null;
}

/** Records validation v: the best weights when it improves on the best, then the sealed selection state. */
async function select(s: Session, sel: Selection, v: Validation, losses: SelectionState['losses']): Promise<Selection> {
  const { ctx } = s;
  const p = ctx.params;
  const score = (x: Omit<Validation, 'epoch'>) => (p.select_by === 'auc' ? x.auc : x.accuracy);
  const improved = sel.state.best === null || score(v) > score(sel.state.best);
  let { bestDir, bestDigest } = sel;
  if (improved) {
    // A new folder per best epoch: the state names it only once it is complete, and the one it named before
    // stays until the new state is written, so a kill at any moment leaves a state and weights that match.
    bestDir = join(ctx.workDir, `best-${v.epoch}`);
    await rm(`${bestDir}.tmp`, { recursive: true, force: true });
    await saveNet(s.net, `${bestDir}.tmp`);
    await rm(bestDir, { recursive: true, force: true });
    await rename(`${bestDir}.tmp`, bestDir);
    bestDigest = await hashTree(bestDir);
  }
  const state: SelectionState = {
    lastValidated: v.epoch,
    best: improved ? v : sel.state.best,
    validations: [...sel.state.validations.filter((x) => x.epoch !== v.epoch), v],
    losses,
  };
  const bestName = bestDir && basename(bestDir);
  writeSealed(join(ctx.workDir, SELECTION_FILE), { state, bestDir: bestName, bestDigest } satisfies SelectionFile);
  await removeBestDirs(ctx.workDir, bestName ?? undefined);
  const line = `validation after epoch ${v.epoch}: accuracy ${v.accuracy.toFixed(4)}, AUC ${v.auc.toFixed(4)}, EER ${v.eer.toFixed(4)}${improved ? ' (best so far, saved)' : ''}`;
  ctx.log(line);
  const metrics = { accuracy: v.accuracy, auc: v.auc, eer: v.eer };
  ctx.report({ kind: 'validation', epoch: v.epoch, epochs: p.epochs, metrics, best: improved });
  return { state, bestDir, bestDigest };
}

/**
 * Trains in chunks that end at validation epochs. trainNet resumes from its epoch checkpoint, so a chunk
 * interrupted anywhere (even between checkpoint and validation) continues where it stopped.
 */
async function trainAndSelect(s: Session): Promise<Selection> {
  const { ctx } = s;
  const p = ctx.params;
  const checkpointDir = s.train.checkpointDir!;
  let sel: Selection = await resumeSelection(ctx.workDir, checkpointDir, s.say, () => ctx.epochState?.restarted());
  // A longer run validates after this run's last epoch only when it is a multiple of validate_every.
  const lastIsRegular = p.epochs % p.validate_every === 0;
  const heldState = join(ctx.workDir, EPOCH_STATE_DIR);
  for (const target of validationEpochs(p.epochs, p.validate_every)) {
    if (target <= sel.state.lastValidated) continue;
    const result = await trainNet({ ...s.train, epochs: target });
    if (result.resumedFrom > 0 && result.history.length > 0 && result.resumedFrom > sel.state.lastValidated) {
      ctx.log(`resumed after epoch ${result.resumedFrom}`);
    }
    const losses = result.history.map((h) => ({ epoch: h.epoch, loss: h.loss, parts: h.parts }));
    if (ctx.epochState && target === p.epochs && !lastIsRegular) await writeEpochState(heldState, checkpointDir, sel);
    sel = await select(s, sel, await validateAt(s, target), losses);
  }
  if (ctx.epochState) {
    if (lastIsRegular) await writeEpochState(ctx.epochState.out, checkpointDir, sel);
    else if (existsSync(heldState)) await cp(heldState, ctx.epochState.out, { recursive: true });
  }
  return sel;
}

/** The best weights as the stage's model, its deterministic training record (no timings) and metrics. */
async function writeModel(s: Session, sel: Selection): Promise<void> {
  const { ctx } = s;
  const best = sel.state.best!;
  await mkdir(ctx.outputs.model, { recursive: true });
  await cp(sel.bestDir!, ctx.outputs.model, { recursive: true });
  await writeFile(
    join(ctx.outputs.model, 'training.json'),
    JSON.stringify(
      {
        select_by: ctx.params.select_by,
        best_epoch: best.epoch,
        validations: sel.state.validations,
        losses: sel.state.losses,
      },
      null,
      1,
    ) + '\n',
  );
  ctx.metrics({
    best_epoch: best.epoch,
    val_accuracy: Number(best.accuracy.toFixed(4)),
    val_auc: Number(best.auc.toFixed(4)),
    train_identities: s.identities,
  });
}

export const run: StageRun<TriarchyParams> = async (ctx) => {
  const backend = await initBackend(ctx.backend as BackendPreference);
  ctx.metrics(backendMetrics(backend));
  const splits = await readSplits(ctx.inputs.splits);
  const s = await startSession(ctx, backend.name, splits);
  try {
    await writeModel(s, await trainAndSelect(s));
  } finally {
    await s.steps.engine?.close();
    s.net.dispose();
  }
};

export default run;
