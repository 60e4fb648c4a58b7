// Placeholder until sweeps land: refuses clearly rather than ignoring --sweep.
import { FacepipeError } from '../../core/errors.js';
export async function sweepRunCommand(_pipeline: string | undefined, _o: unknown): Promise<number> {
  throw new FacepipeError({ code: 'not-supported', file: 'command line', message: '--sweep is not supported yet', hint: 'run each point with --set' });
}
