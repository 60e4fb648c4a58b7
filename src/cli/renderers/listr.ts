// The interactive renderer: a listr2 task per stage, driven by the same events as the other renderers.
import type { RunEvent, StageState } from '../../contracts/events.js';
import { stepsText, sweepText, validationText } from './progress-text.js';

interface Slot {
  resolve: () => void;
  reject: (e: Error) => void;
  task?: { title: string; output: string; skip(msg?: string): void };
  title: string;
  /** The live lines under the title: the step bar (or progress text), then the last validation results. */
  detail: string;
  validations: string[];
}

export async function listrRenderer(): Promise<{ sink: (e: RunEvent) => void; done: () => Promise<void> }> {
  const { Listr } = await import('listr2');
  const slots = new Map<string, Slot>();
  let list: { run(): Promise<unknown> } | undefined;
  let running: Promise<unknown> = Promise.resolve();
  const notes: string[] = [];
  const final = (s: StageState) =>
    s === 'cached' || s === 'done' || s === 'failed' || s === 'skipped' || s === 'interrupted';
  const sink = (e: RunEvent) => {
    if (e.type === 'run-start') {
      const tasks = e.stages.map((id) => {
        let resolve!: () => void;
        let reject!: (err: Error) => void;
        const p = new Promise<void>((res, rej) => {
          resolve = res;
          reject = rej;
        });
        const slot: Slot = { resolve, reject, title: `${id}: waiting`, detail: '', validations: [] };
        slots.set(id, slot);
        return {
          title: `${id}: waiting`,
          rendererOptions: { persistentOutput: true },
          task: (_: unknown, task: Slot['task']) => {
            slot.task = task;
            task!.title = slot.title;
            return p;
          },
        };
      });
      list = new Listr(tasks, {
        concurrent: true,
        exitOnError: false,
        // listr2's own SIGINT handler exits at once with 127: the run command's handler must stop the run
        // (exit 130, record 'interrupted', release the lock) exactly as in plain mode.
        registerSignalListeners: false,
        rendererOptions: { collapseErrors: false },
      });
      // A halving sweep runs one list per rung: each starts once the previous one is drawn out.
      const next = list;
      running = running.then(() => next.run()).catch(() => undefined);
    } else if (e.type === 'stage-state') {
      const s = slots.get(e.stage);
      if (!s) return;
      const setTitle = (t: string) => {
        s.title = t;
        if (s.task) s.task.title = t;
      };
      if (e.state === 'running') setTitle(`${e.stage}: running (${e.reason})`);
      if (!final(e.state)) return;
      if (e.state === 'cached') {
        setTitle(`${e.stage}: cached`);
        s.resolve();
      } else if (e.state === 'done') {
        setTitle(`${e.stage}: done in ${((e.durationMs ?? 0) / 1000).toFixed(1)} s`);
        // Done: the bar goes, the validation results stay.
        if (s.task) s.task.output = s.validations.join('\n');
        s.resolve();
      } else if (e.state === 'skipped' || e.state === 'interrupted') {
        s.task?.skip(`${e.stage}: ${e.state} (${e.reason})`);
        s.resolve();
      } else s.reject(new Error(`${e.stage}: ${e.error ?? 'failed'}`));
    } else if (e.type === 'stage-progress' || e.type === 'stage-steps' || e.type === 'stage-validation') {
      const s = slots.get(e.stage);
      if (!s) return;
      if (e.type === 'stage-validation') s.validations = [...s.validations, validationText(e)].slice(-3);
      else s.detail = e.type === 'stage-steps' ? stepsText(e) : e.text;
      if (s.task) s.task.output = [s.detail, ...s.validations].filter(Boolean).join('\n');
    } else if (e.type === 'backend') {
      if (!notes.some((n) => n.startsWith(`TensorFlow.js backend: ${e.backend} `)))
        notes.push(`TensorFlow.js backend: ${e.backend} (first used by ${e.stage})`);
      const s = slots.get(e.stage);
      if (s) {
        s.title = `${s.title} [${e.backend}]`;
        if (s.task) s.task.title = s.title;
      }
    } else if (e.type === 'lock-wait') {
      process.stderr.write(`waiting for the workspace lock held by ${e.holder}\n`);
    } else if (e.type === 'warning') {
      notes.push(`warning: ${e.message}`);
    } else if (e.type === 'run-end') {
      notes.push(`run ${e.status} in ${(e.durationMs / 1000).toFixed(2)} s; record: ${e.recordPath}`);
    } else if (e.type === 'sweep-rung' || e.type === 'sweep-ranking') {
      // Between two rungs' lists, so printed as soon as the rung's list is done.
      const text = sweepText(e);
      running = running.then(() => void process.stdout.write(text));
    }
  };
  return {
    sink,
    done: async () => {
      await running;
      for (const n of notes) process.stdout.write(n + '\n');
    },
  };
}
