// Messages between the runner and a stage's worker process.
export interface StartMessage {
  type: 'start';
  runModule: string;
  ctx: {
    stage: string;
    params: Record<string, unknown>;
    inputs: Record<string, string>;
    outputs: Record<string, string>;
    workDir: string;
    workspace: string;
    backend: string;
  };
}
export type ToWorker = StartMessage | { type: 'abort' };
export type FromWorker =
  | { type: 'progress'; text: string }
  | { type: 'log'; line: string }
  | { type: 'metrics'; values: Record<string, number | string> }
  | { type: 'done' }
  | { type: 'error'; message: string; stack?: string; aborted?: boolean };
