// One JSON object per line, for machines.
import type { RunEvent } from '../../contracts/events.js';

export function jsonRenderer(write: (s: string) => void = (s) => process.stdout.write(s)) {
  return (e: RunEvent) => write(JSON.stringify({ time: new Date().toISOString(), ...e }) + '\n');
}
