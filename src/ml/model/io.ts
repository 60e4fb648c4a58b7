// Save/load in the TensorFlow.js artifacts format: <dir>/model.json (topology + weightsManifest) and
// <dir>/weights.bin (float32, little-endian, manifest order). Backend-independent: decoded on any backend.
// The inference model is a genuine LayersModel (format 'layers-model', Keras topology): tf.loadLayersModel
// loads it anywhere; facepipe's own loader maps it back onto its faster raw-variable net. Training nets and
// backbones (saveNet, saveBackbone) use the same file layout with a facepipe topology ('facepipe-net').
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { BackboneConfig } from '../types.js';
import { PretextNet } from './pretext.js';
import { facepipeNameOf, layersModelArtifacts } from './layers-export.js';
import { EmbeddingNet, TriarchyNet } from './triarchy.js';

export const MODEL_FORMAT = 'facepipe-net';
export const MODEL_FORMAT_VERSION = 1;
const WEIGHTS_FILE = 'weights.bin';

export type NetKind = 'triarchy' | 'pretext' | 'inference' | 'backbone';

export interface NetTopology {
  kind: NetKind;
  formatVersion: number;
  backbone: BackboneConfig;
  embeddingDim?: number;
  numClasses?: number;
  heads?: Record<string, number>;
  /** Trainable parameter count of what the file holds. */
  numParams: number;
}

interface ModelJson {
  format: string;
  generatedBy: string;
  convertedBy: null;
  modelTopology: { facepipe?: NetTopology } & Record<string, unknown>;
  weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
}

async function writeJsonAndWeights(dir: string, json: ModelJson, data: ArrayBuffer): Promise<void> {
  await mkdir(dir, { recursive: true });
  // Weights first, model.json last and atomically: a directory with model.json is complete.
  await writeFile(join(dir, WEIGHTS_FILE), new Uint8Array(data));
  await writeFile(join(dir, 'model.json.tmp'), JSON.stringify(json, null, 1));
  await rename(join(dir, 'model.json.tmp'), join(dir, 'model.json'));
}

type AnyNet = EmbeddingNet | PretextNet;

/** Trainable parameters (BN moving statistics are not counted, as in PyTorch's count). */
export function countParams(netOrVars: { trainableVariables(): tf.Variable[] } | tf.Variable[]): number {
  const vars = Array.isArray(netOrVars) ? netOrVars : netOrVars.trainableVariables();
  return vars.reduce((sum, v) => sum + v.size, 0);
}

async function writeArtifacts(dir: string, topology: NetTopology, vars: Map<string, tf.Variable>): Promise<void> {
  const named = [...vars].map(([name, tensor]) => ({ name, tensor }));
  const { data, specs } = await tf.io.encodeWeights(named);
  await writeJsonAndWeights(
    dir,
    {
      format: MODEL_FORMAT,
      generatedBy: 'facepipe',
      convertedBy: null,
      modelTopology: { facepipe: topology },
      weightsManifest: [{ paths: [WEIGHTS_FILE], weights: specs }],
    },
    data,
  );
}

interface Artifacts {
  topology: NetTopology;
  weights: tf.NamedTensorMap;
}

async function readArtifacts(dir: string): Promise<Artifacts> {
  const jsonPath = join(dir, 'model.json');
  let json: ModelJson;
  try {
    json = JSON.parse(await readFile(jsonPath, 'utf8')) as ModelJson;
  } catch (err) {
    throw new Error(`${jsonPath}: cannot read model (${(err as Error).message.split('\n')[0]})`, { cause: err });
  }
  const layers = json.format === 'layers-model';
  const topology = json.modelTopology?.facepipe;
  if ((json.format !== MODEL_FORMAT && !layers) || !topology) {
    throw new Error(
      `${jsonPath}: not a facepipe model (format '${json.format}'); save it with facepipe's saveNet/saveInferenceModel/saveBackbone`,
    );
  }
  if (topology.formatVersion > MODEL_FORMAT_VERSION) {
    throw new Error(
      `${jsonPath}: format version ${topology.formatVersion} is newer than this facepipe reads (${MODEL_FORMAT_VERSION}); upgrade facepipe`,
    );
  }
  const specs: tf.io.WeightsManifestEntry[] = [];
  const buffers: Uint8Array[] = [];
  for (const group of json.weightsManifest) {
    for (const p of group.paths) buffers.push(await readFile(join(dir, p)));
    // Keras layer/weight names of a LayersModel map back to facepipe parameter names.
    specs.push(...(layers ? group.weights.map((w) => ({ ...w, name: facepipeNameOf(w.name) })) : group.weights));
  }
  const total = buffers.reduce((n, b) => n + b.byteLength, 0);
  const all = new Uint8Array(total);
  let off = 0;
  for (const b of buffers) {
    all.set(b, off);
    off += b.byteLength;
  }
  const expected = specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1) * 4, 0);
  if (expected !== total)
    throw new Error(
      `${dir}: weights are ${total} bytes but model.json describes ${expected}; the files do not belong together`,
    );
  return { topology, weights: tf.io.decodeWeights(all.buffer, specs) };
}

/**
 * Assigns weights to variables by logical name. With `prefix`, only variables whose name starts with it.
 * Every targeted variable must be present with the same shape (clear error otherwise).
 */
function assignWeights(net: AnyNet, weights: tf.NamedTensorMap, source: string, prefix = ''): number {
  let count = 0;
  const missing: string[] = [];
  for (const [name, v] of net.namedVariables()) {
    if (!name.startsWith(prefix)) continue;
    const w = weights[name];
    if (!w) {
      missing.push(name);
      continue;
    }
    // A LayersModel stores 1x1 convolution kernels as [1, 1, in, out]; facepipe keeps them as [in, out].
    const pointwise =
      w.rank === 4 && w.shape[0] === 1 && w.shape[1] === 1 && w.shape.slice(2).join(',') === v.shape.join(',');
    if (pointwise) {
      const r = tf.reshape(w, v.shape);
      v.assign(r);
      r.dispose();
      count++;
      continue;
    }
    if (w.shape.join(',') !== v.shape.join(',')) {
      throw new Error(
        `${source}: weight '${name}' has shape [${w.shape}] but the net expects [${v.shape}] (different backbone width/depth?)`,
      );
    }
    v.assign(w);
    count++;
  }
  if (missing.length) {
    throw new Error(
      `${source}: ${missing.length} weights missing, e.g. '${missing.slice(0, 3).join("', '")}' (different architecture?)`,
    );
  }
  return count;
}

function kindOf(net: AnyNet): NetKind {
  if (net instanceof TriarchyNet) return 'triarchy';
  if (net instanceof PretextNet) return 'pretext';
  return 'inference';
}

function topologyOf(net: AnyNet, kind: NetKind, vars: Map<string, tf.Variable>): NetTopology {
  const trainable = [...vars.entries()].filter(([, v]) => v.trainable).map(([, v]) => v);
  const t: NetTopology = {
    kind,
    formatVersion: MODEL_FORMAT_VERSION,
    backbone: net.backbone.config,
    numParams: countParams(trainable),
  };
  if (kind === 'triarchy' || kind === 'inference') t.embeddingDim = (net as EmbeddingNet).embeddingDim;
  if (kind === 'triarchy') t.numClasses = (net as TriarchyNet).numClasses;
  if (kind === 'pretext') t.heads = (net as PretextNet).options.heads;
  return t;
}

function subset(net: AnyNet, keep: (name: string) => boolean): Map<string, tf.Variable> {
  return new Map([...net.namedVariables()].filter(([n]) => keep(n)));
}

/** Fills a net just built for loading; on a mismatch the half-filled net is disposed. Weights are always freed. */
function fillNewNet(net: AnyNet, weights: tf.NamedTensorMap, dir: string): void {
  try {
    assignWeights(net, weights, dir);
  } catch (err) {
    net.dispose();
    throw err;
  } finally {
    tf.dispose(weights);
  }
}

/** Saves the whole net (every variable incl. BN moving statistics, identity head and centres). */
export async function saveNet(net: TriarchyNet | PretextNet, dir: string): Promise<void> {
  const vars = net.namedVariables();
  await writeArtifacts(dir, topologyOf(net, kindOf(net), vars), vars);
}

/** Rebuilds a net saved with saveNet (seed only matters for later drop-connect randomness). */
export async function loadNet(dir: string, seed = 0): Promise<TriarchyNet | PretextNet> {
  const { topology: t, weights } = await readArtifacts(dir);
  let net: TriarchyNet | PretextNet;
  if (t.kind === 'triarchy') {
    net = new TriarchyNet({ backbone: t.backbone, embeddingDim: t.embeddingDim!, numClasses: t.numClasses!, seed });
  } else if (t.kind === 'pretext') {
    net = new PretextNet({ backbone: t.backbone, heads: t.heads!, seed });
  } else {
    tf.dispose(weights);
    throw new Error(
      `${dir}: holds a '${t.kind}' model; use ${t.kind === 'inference' ? 'loadInferenceModel' : 'loadBackboneInto'}`,
    );
  }
  fillNewNet(net, weights, dir);
  return net;
}

/** Restores every variable of an existing net from a saveNet directory (checkpoint resume). */
export async function loadNetWeightsInto(net: TriarchyNet | PretextNet, dir: string): Promise<void> {
  const { weights } = await readArtifacts(dir);
  try {
    assignWeights(net, weights, dir);
  } finally {
    tf.dispose(weights);
  }
}

/**
 * Saves backbone + embedding only (no identity head, BN or centres) as a TensorFlow.js LayersModel:
 * `tf.loadLayersModel('file://<dir>/model.json')` (or any IOHandler) gives a model whose predict() is embed().
 */
export async function saveInferenceModel(net: EmbeddingNet, dir: string): Promise<void> {
  const vars = subset(net, (n) => n.startsWith('backbone/') || n.startsWith('embedding/'));
  const artifacts = await layersModelArtifacts(net);
  await writeJsonAndWeights(
    dir,
    {
      format: 'layers-model',
      generatedBy: artifacts.generatedBy ?? 'facepipe',
      convertedBy: null,
      // The Keras topology plus facepipe's description under the same 'facepipe' key as every facepipe model
      // (tfjs-layers ignores the extra key).
      modelTopology: {
        ...(artifacts.modelTopology as Record<string, unknown>),
        facepipe: topologyOf(net, 'inference', vars),
      },
      weightsManifest: [{ paths: [WEIGHTS_FILE], weights: artifacts.weightSpecs ?? [] }],
    },
    Array.isArray(artifacts.weightData) ? tf.io.concatenateArrayBuffers(artifacts.weightData) : artifacts.weightData!,
  );
}

/**
 * A tf.io load handler for a model directory on disk (tfjs-core has no file:// handler without tfjs-node):
 * `tfl.loadLayersModel(modelDirHandler(dir))` loads a saveInferenceModel directory as a LayersModel.
 */
export function modelDirHandler(dir: string): tf.io.IOHandler {
  return {
    load: async () => {
      const json = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8')) as ModelJson;
      const buffers: Uint8Array[] = [];
      const weightSpecs: tf.io.WeightsManifestEntry[] = [];
      for (const group of json.weightsManifest) {
        for (const p of group.paths) buffers.push(await readFile(join(dir, p)));
        weightSpecs.push(...group.weights);
      }
      const weightData = tf.io.concatenateArrayBuffers(
        buffers.map((b) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer),
      );
      return {
        modelTopology: json.modelTopology,
        format: json.format,
        generatedBy: json.generatedBy,
        weightSpecs,
        weightData,
      };
    },
  };
}

export interface InferenceModel {
  /** [N, H, W, 3] in [0, 1] -> [N, embeddingDim], run in chunks of batchSize (default 64). */
  embed(x: tf.Tensor4D, batchSize?: number): tf.Tensor2D;
  numParams: number;
  embeddingDim: number;
  backbone: BackboneConfig;
  dispose(): void;
}

/** Loads a model saved by saveInferenceModel (or the inference part of a saveNet Triarchy directory). */
export async function loadInferenceModel(dir: string): Promise<InferenceModel> {
  const { topology: t, weights } = await readArtifacts(dir);
  if (t.kind !== 'inference' && t.kind !== 'triarchy') {
    tf.dispose(weights);
    throw new Error(`${dir}: holds a '${t.kind}' model, not an embedding model (save one with saveInferenceModel)`);
  }
  const net = new EmbeddingNet(t.backbone, t.embeddingDim!, 0);
  fillNewNet(net, weights, dir);
  return {
    embed: (x, batchSize) => net.embed(x, batchSize),
    numParams: countParams(net),
    embeddingDim: net.embeddingDim,
    backbone: t.backbone,
    dispose: () => net.dispose(),
  };
}

/** Saves the backbone variables (incl. BN moving statistics), e.g. of a trained pretext net. */
export async function saveBackbone(net: AnyNet, dir: string): Promise<void> {
  const vars = subset(net, (n) => n.startsWith('backbone/'));
  await writeArtifacts(dir, topologyOf(net, 'backbone', vars), vars);
}

/**
 * Loads backbone weights (incl. BN moving statistics) into a net with the same backbone config: the pretext ->
 * Triarchy transfer. Accepts a saveBackbone directory or any saveNet/saveInferenceModel directory.
 * Returns the number of variables assigned.
 */
export async function loadBackboneInto(net: AnyNet, dir: string): Promise<number> {
  const { topology: t, weights } = await readArtifacts(dir);
  try {
    const a = t.backbone;
    const b = net.backbone.config;
    if (a.width !== b.width || a.depth !== b.depth) {
      throw new Error(
        `${dir}: backbone width/depth ${a.width}/${a.depth} does not match the net's ${b.width}/${b.depth}`,
      );
    }
    return assignWeights(net, weights, dir, 'backbone/');
  } finally {
    tf.dispose(weights);
  }
}
