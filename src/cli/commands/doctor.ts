// What this machine offers facepipe: Node, the TensorFlow.js backends (the WebGPU adapter and its limits), how
// to get the missing ones, and whether the executors that need a service (Slurm) can reach it.
import type { BackendProbe } from '../../ml/backend/select.js';

export async function doctorCommand(): Promise<number> {
  process.stdout.write(`node ${process.version} on ${process.platform}-${process.arch}\n`);
  let probe: (() => Promise<BackendProbe[]>) | undefined;
  try {
    probe = ((await import('../../ml/backend/select.js')) as { probeBackends: typeof probe }).probeBackends;
  } catch (e) {
    process.stdout.write(`ML backends: cannot load the backend module (${(e as Error).message})\n`);
    return 1;
  }
  const rows = await probe!();
  for (const r of rows) {
    process.stdout.write(`${r.available ? 'ok  ' : 'no  '} ${r.name.padEnd(11)} ${r.version ?? ''}  ${r.detail}\n`);
    for (const line of r.more ?? []) process.stdout.write(`       ${line}\n`);
    if (!r.available && r.howToGet) process.stdout.write(`       how to get it: ${r.howToGet}\n`);
  }
  const best = rows.find((r) => r.available && r.autoEligible !== false);
  process.stdout.write(`default backend (--backend auto): ${best?.name ?? 'none'}\n`);
  const onnx = await import('../../ml/export/onnx/runtime.js');
  const ort = await onnx.onnxRuntimeStatus();
  const providers = ort.available ? `, execution providers ${onnx.executionProviders().join(' > ')}` : '';
  process.stdout.write(
    `${ort.available ? 'ok  ' : 'no  '} onnxruntime ${ort.detail}${providers}  (evaluate's default runtime when ok)\n`,
  );
  if (!ort.available) process.stdout.write(`       how to get it: ${onnx.ORT_HOW_TO_GET}\n`);
  // Executors other than local (Slurm): reachable or not; only the ones a run asks for must be.
  const { checkExecutors } = await import('../../execute/executors/registry.js');
  for (const c of await checkExecutors()) {
    process.stdout.write(`executor ${c.name}: ${c.summary}\n`);
    for (const d of c.details ?? []) process.stdout.write(`       ${d}\n`);
    if (c.hint) process.stdout.write(`       how to get it: ${c.hint}\n`);
  }
  return best ? 0 : 1;
}
