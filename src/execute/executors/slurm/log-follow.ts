// Reading a job's log as it grows, on the shared filesystem: each call reads what was appended since the last
// one, and hands back whole lines. The job side's marked lines become progress and metrics again.
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import type { StageReport } from '../../../contracts/events.js';
import type { JobEvents } from '../../../contracts/executor.js';
import { MARK } from './protocol.js';

export class LogFollower {
  private offset = 0;
  private partial = '';
  private readonly decoder = new StringDecoder('utf8');

  constructor(
    readonly path: string,
    private readonly events: JobEvents,
  ) {}

  /** Read what was appended; `end`: the job is over, so a last line without a newline counts too. */
  read(end = false): void {
    let size: number;
    try {
      size = statSync(this.path).size;
    } catch {
      return; // not there yet (pending job) or never (the node could not write it)
    }
    if (size > this.offset) {
      const buf = Buffer.alloc(Math.min(size - this.offset, 4 * 1024 * 1024));
      const fd = openSync(this.path, 'r');
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, this.offset);
      } finally {
        closeSync(fd);
      }
      this.offset += n;
      const lines = (this.partial + this.decoder.write(buf.subarray(0, n))).split('\n');
      this.partial = lines.pop() ?? '';
      for (const l of lines) this.line(l);
    }
    if (end && this.partial) {
      this.line(this.partial);
      this.partial = '';
    }
  }

  private line(l: string): void {
    if (!l.startsWith(MARK)) return this.events.log(l);
    const rest = l.slice(MARK.length);
    const space = rest.indexOf(' ');
    const [what, value] = space < 0 ? [rest, ''] : [rest.slice(0, space), rest.slice(space + 1)];
    if (what === 'progress') this.events.progress(value);
    else if (what === 'metrics') {
      try {
        const v: unknown = JSON.parse(value);
        if (v && typeof v === 'object' && !Array.isArray(v)) this.events.metrics(v as Record<string, number | string>);
      } catch {
        this.events.log(l);
      }
    } else if (what === 'report') {
      const r = parseReport(value);
      if (r) this.events.report(r);
      else this.events.log(l);
    } else this.events.log(l);
  }
}

/** A report line written by the job side, checked before it is trusted. */
function parseReport(text: string): StageReport | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  const r = v as Partial<Record<string, unknown>> | null;
  if (!r || typeof r !== 'object') return undefined;
  if (r.kind === 'steps' && typeof r.step === 'number' && typeof r.total === 'number')
    return r as unknown as StageReport;
  if (r.kind === 'validation' && typeof r.epoch === 'number' && r.metrics && typeof r.metrics === 'object')
    return r as unknown as StageReport;
  return undefined;
}
