import { FacepipeError } from '../../core/errors.js';

const BACKENDS = ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'];

/** --backend beats the FACEPIPE_BACKEND variable, which beats the pipeline's `backend:`. */
export function resolveBackend(flag: string | undefined, fromPipeline: string): string {
  const b = flag ?? process.env.FACEPIPE_BACKEND ?? fromPipeline ?? 'auto';
  if (!BACKENDS.includes(b))
    throw new FacepipeError({
      code: 'bad-backend',
      file: 'command line',
      message: `unknown backend '${b}'`,
      hint: `use one of ${BACKENDS.join(', ')}`,
    });
  return b;
}
