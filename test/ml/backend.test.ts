import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend, probeBackends } from '../../src/ml/backend/select.js';

test('probeBackends lists tensorflow, webgpu, wasm and cpu with versions or how to get them', async () => {
  const probes = await probeBackends();
  assert.deepEqual(
    probes.map((p) => p.name),
    ['tensorflow', 'webgpu', 'wasm', 'cpu'],
  );
  for (const p of probes) {
    assert.equal(typeof p.available, 'boolean');
    assert.ok(p.detail.length > 0);
    if (p.available) assert.match(p.version ?? '', /\d+\.\d+\.\d+/);
    else assert.match(p.howToGet ?? '', p.name === 'webgpu' ? /Vulkan.*scripts\/software-adapter\.sh/s : /npm install/);
  }
  const wasm = probes.find((p) => p.name === 'wasm')!;
  assert.equal(wasm.available, true);
  assert.match(wasm.detail, /SIMD (on|off)/);
  const native = probes.find((p) => p.name === 'tensorflow')!;
  if (!native.available) assert.match(native.howToGet!, /@tensorflow\/tfjs-node/);
});

test('auto picks tensorflow > webgpu (hardware adapters only) > wasm > cpu and is idempotent', async () => {
  const probes = await probeBackends();
  const expected = probes.find((p) => p.available && p.autoEligible !== false)!.name;
  const info = await initBackend('auto');
  assert.equal(info.name, expected);
  assert.equal(await initBackend(), info);
  assert.equal(await initBackend(expected), info);
});

test('a named backend that is missing is a clear error; named ones switch', async () => {
  const probes = await probeBackends();
  if (!probes[0].available) {
    await assert.rejects(
      initBackend('tensorflow'),
      /backend 'tensorflow' is not available.*npm install @tensorflow\/tfjs-node/s,
    );
  } else {
    assert.equal((await initBackend('tensorflow')).name, 'tensorflow');
  }
  const cpu = await initBackend('cpu');
  assert.equal(cpu.name, 'cpu');
  const tf = await import('@tensorflow/tfjs-core');
  assert.equal(tf.getBackend(), 'cpu');
  const wasm = await initBackend('wasm');
  assert.equal(wasm.name, 'wasm');
  assert.equal(tf.getBackend(), 'wasm');
  assert.match(wasm.detail, /facepipe training kernels/);
});
