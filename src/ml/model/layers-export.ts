// The inference model as a genuine TensorFlow.js LayersModel (Keras topology), so the saved model.json loads
// with tf.loadLayersModel in any TF.js runtime (browser, Node, any backend). Layer names are facepipe's
// parameter prefixes, so weight names are facepipe's parameter names ('backbone/blocks/3/expand/kernel'),
// except the depthwise kernels, which Keras calls 'depthwise_kernel'.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { EmbeddingNet } from './triarchy.js';

/** Keras weight name ('<layer>/<weight>') -> facepipe parameter name. */
export function facepipeNameOf(kerasName: string): string {
  return kerasName.replace(/\/depthwise_kernel$/, '/kernel');
}

/** Builds the LayersModel of backbone + embedding (inference graph: BN on moving statistics, no drop-connect). */
export function buildLayersModel(net: EmbeddingNet): tfl.LayersModel {
  const vars = net.namedVariables();
  const get = (name: string): tf.Tensor => {
    const v = vars.get(name);
    if (!v) throw new Error(`layers export: parameter '${name}' missing`);
    return v;
  };
  const toSet: Array<[tfl.layers.Layer, tf.Tensor[]]> = [];
  const temps: tf.Tensor[] = [];
  const bn = (x: tfl.SymbolicTensor, prefix: string, eps: number) => {
    const layer = tfl.layers.batchNormalization({ axis: -1, epsilon: eps, name: prefix });
    toSet.push([layer, ['gamma', 'beta', 'moving_mean', 'moving_variance'].map((w) => get(`${prefix}/${w}`))]);
    return layer.apply(x) as tfl.SymbolicTensor;
  };
  const swish = (x: tfl.SymbolicTensor) =>
    tfl.layers.activation({ activation: 'swish' }).apply(x) as tfl.SymbolicTensor;
  const conv1x1 = (x: tfl.SymbolicTensor, prefix: string, bias: boolean, activation?: 'swish' | 'sigmoid') => {
    const kernel = get(`${prefix}/kernel`);
    const [cin, cout] = kernel.shape as number[];
    const kernel4d = tf.reshape(kernel, [1, 1, cin, cout]);
    temps.push(kernel4d);
    const layer = tfl.layers.conv2d({ filters: cout, kernelSize: 1, useBias: bias, activation, name: prefix });
    toSet.push([layer, [kernel4d, ...(bias ? [get(`${prefix}/bias`)] : [])]]);
    return layer.apply(x) as tfl.SymbolicTensor;
  };

  const eps = 1e-3;
  const input = tfl.input({ shape: [null, null, 3], name: 'image' });
  const stemKernel = get('backbone/stem/conv/kernel');
  const stem = tfl.layers.conv2d({
    filters: (stemKernel.shape as number[])[3],
    kernelSize: 3,
    strides: 2,
    padding: 'same',
    useBias: false,
    name: 'backbone/stem/conv',
  });
  toSet.push([stem, [stemKernel]]);
  let h = swish(bn(stem.apply(input) as tfl.SymbolicTensor, 'backbone/stem/bn', eps));
  for (const block of net.backbone.blocks) {
    const { spec } = block;
    const p = `backbone/blocks/${spec.index}`;
    const input0 = h;
    if (block.expand) h = swish(bn(conv1x1(h, `${p}/expand`, false), `${p}/expand_bn`, eps));
    const dw = tfl.layers.depthwiseConv2d({
      kernelSize: spec.kernel,
      strides: spec.stride,
      padding: 'same',
      useBias: false,
      depthMultiplier: 1,
      name: `${p}/depthwise`,
    });
    toSet.push([dw, [get(`${p}/depthwise/kernel`)]]);
    h = swish(bn(dw.apply(h) as tfl.SymbolicTensor, `${p}/depthwise_bn`, eps));
    const mid = spec.inFilters * spec.expand;
    let s = tfl.layers.globalAveragePooling2d({}).apply(h) as tfl.SymbolicTensor;
    s = tfl.layers.reshape({ targetShape: [1, 1, mid] }).apply(s) as tfl.SymbolicTensor;
    s = conv1x1(s, `${p}/se_reduce`, true, 'swish');
    s = conv1x1(s, `${p}/se_expand`, true, 'sigmoid');
    h = tfl.layers.multiply().apply([h, s]) as tfl.SymbolicTensor;
    h = bn(conv1x1(h, `${p}/project`, false), `${p}/project_bn`, eps);
    if (spec.stride === 1 && spec.inFilters === spec.outFilters)
      h = tfl.layers.add().apply([h, input0]) as tfl.SymbolicTensor;
  }
  h = swish(bn(conv1x1(h, 'backbone/head/conv', false), 'backbone/head/bn', eps));
  const pooled = tfl.layers.globalAveragePooling2d({}).apply(h) as tfl.SymbolicTensor;
  const embKernel = get('embedding/kernel');
  const emb = tfl.layers.dense({ units: (embKernel.shape as number[])[1], name: 'embedding' });
  const output = emb.apply(pooled) as tfl.SymbolicTensor;
  toSet.push([emb, [embKernel, get('embedding/bias')]]);
  const model = tfl.model({ inputs: input, outputs: output, name: 'facepipe_embedding' });
  for (const [layer, weights] of toSet) layer.setWeights(weights);
  tf.dispose(temps);
  return model;
}

/** Model artifacts (topology + weights) of the LayersModel, as tf.io handlers produce them. */
export async function layersModelArtifacts(net: EmbeddingNet): Promise<tf.io.ModelArtifacts> {
  const model = buildLayersModel(net);
  try {
    let artifacts: tf.io.ModelArtifacts | undefined;
    await model.save(
      tf.io.withSaveHandler((a) => {
        artifacts = a;
        return Promise.resolve({ modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } });
      }),
    );
    return artifacts!;
  } finally {
    model.dispose();
  }
}
