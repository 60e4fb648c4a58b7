// Shared test rig for the engine: temp workspaces, and the built CLI run as a child process, so the tests
// exercise exactly what a user runs (argument parsing, exit codes, locking, signals, files on disk).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { RunEvent } from '../../src/contracts/events.js';
import { packageRoot } from '../../src/core/package-root.js';
import { pidRunning } from '../../src/core/procs.js';

export const repoRoot = packageRoot;

export const CLI = join(repoRoot(), 'dist', 'src', 'cli', 'main.js');

export type Event = RunEvent & { time: string };

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  events: Event[];
}

/** A fresh workspace under the OS temp folder, holding `files` (path relative to the workspace -> text). */
export function makeWorkspace(files: Record<string, string> = {}): string {
  const ws = mkdtempSync(join(tmpdir(), 'facepipe-engine-'));
  writeFiles(ws, files);
  return ws;
}

export function writeFiles(ws: string, files: Record<string, string>): void {
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(dirname(join(ws, rel)), { recursive: true });
    writeFileSync(join(ws, rel), text);
  }
}

export function removeWorkspace(ws: string): void {
  rmSync(ws, { recursive: true, force: true });
}

/** Parse the JSON-lines events in stdout (other lines, e.g. the closing "outputs:" note, are ignored). */
export function parseEvents(stdout: string): Event[] {
  const out: Event[] = [];
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as Event);
    } catch {
      /* not an event */
    }
  }
  return out;
}

/**
 * Start the CLI in `ws` without waiting; `onEvent` sees each JSON event as it arrives. `detached` puts it in a
 * process group of its own (as `setsid facepipe run &` does), so that `kill -9 -- -PID` kills the group.
 */
export function startCli(
  ws: string,
  args: string[],
  onEvent?: (e: Event, child: ChildProcess) => void,
  opts: { detached?: boolean } = {},
): { child: ChildProcess; done: Promise<CliResult> } {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: ws,
    env: { ...process.env, CI: '1', FACEPIPE_DEBUG: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: opts.detached,
  });
  let stdout = '';
  let stderr = '';
  let partial = '';
  child.stdout.on('data', (c: Buffer) => {
    const s = c.toString();
    stdout += s;
    partial += s;
    const lines = partial.split('\n');
    partial = lines.pop()!;
    if (onEvent) for (const e of parseEvents(lines.join('\n'))) onEvent(e, child);
  });
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, events: parseEvents(stdout) }));
  });
  return { child, done };
}

/** Run the CLI in `ws` to completion. Commands that take --progress get `--progress json` unless told otherwise. */
export async function runCli(ws: string, args: string[], timeoutMs = 30_000): Promise<CliResult> {
  const { child, done } = startCli(ws, args);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  try {
    return await done;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Every module the CLI loads while running `args` in ws, and its exit status: ESM specifiers as resolved (a
 * resolve hook) and CommonJS ones as required, prefixed 'require:' (createRequire included). What a command
 * loads is what each start of it costs.
 */
export function modulesLoadedBy(
  ws: string,
  args: string[],
): { specifiers: string[]; status: number | null; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'fp-hook-'));
  try {
    const log = JSON.stringify(join(dir, 'imports.log'));
    const hook = join(dir, 'hook.mjs');
    writeFileSync(
      hook,
      `import { appendFileSync } from 'node:fs';\nexport async function resolve(s, c, next) { appendFileSync(${log}, s + '\\n'); return next(s, c); }\n`,
    );
    const reg = join(dir, 'register.mjs');
    writeFileSync(
      reg,
      [
        `import Module, { register } from 'node:module';`,
        `import { appendFileSync } from 'node:fs';`,
        `register(${JSON.stringify(pathToFileURL(hook).href)});`,
        `const load = Module._load;`,
        `Module._load = function (request, ...rest) { appendFileSync(${log}, 'require:' + request + '\\n'); return load.call(this, request, ...rest); };`,
        '',
      ].join('\n'),
    );
    const r = spawnSync(process.execPath, ['--import', pathToFileURL(reg).href, CLI, ...args], { cwd: ws });
    const path = join(dir, 'imports.log');
    const specifiers = existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : [];
    return { specifiers, status: r.status, stderr: String(r.stderr) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `facepipe run <pipeline> --progress json ...` */
export function run(ws: string, pipeline: string, ...extra: string[]): Promise<CliResult> {
  return runCli(ws, ['run', pipeline, '--progress', 'json', ...extra]);
}

/** Final state of every stage in a run (the last stage-state event that is not 'waiting'/'running'). */
export function finalStates(events: Event[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of events) {
    if (e.type === 'stage-state' && e.state !== 'waiting' && e.state !== 'running') out[e.stage] = e.state;
  }
  return out;
}

/** Reason given when each stage started running. */
export function runReasons(events: Event[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of events) if (e.type === 'stage-state' && e.state === 'running') out[e.stage] = e.reason ?? '';
  return out;
}

/** Parse `facepipe status` output: stage -> { action, reason }. */
export function parseStatus(stdout: string): Record<string, { action: string; reason: string }> {
  const out: Record<string, { action: string; reason: string }> = {};
  for (const line of stdout.split('\n')) {
    const m = /^(\S+)\s+(cached|will run|may run)\s*(.*)$/.exec(line);
    if (m) out[m[1]] = { action: m[2], reason: m[3].trim() };
  }
  return out;
}

/** Resolves when `pred` holds (polled), rejects after timeoutMs. */
export async function waitFor(pred: () => boolean, timeoutMs = 15_000, what = 'condition'): Promise<void> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The pid of a process that has just exited (and been reaped). */
export function deadPid(): number {
  return Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString());
}

/** Running and not a zombie: a process whose parent died may never be reaped here (PID 1 does not reap). */
export function isRunning(pid: number): boolean {
  return pidRunning(pid);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Every regular file under dir, relative, sorted ('' when missing). */
export function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const d of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${d.name}` : d.name;
      if (d.isDirectory()) walk(r);
      else out.push(r);
    }
  };
  walk('');
  return out.sort();
}

/**
 * A small diamond-ish pipeline of command stages: two independent heads reading one data file, and a
 * tail reading both. Stage commands can be replaced by `cmds`.
 */
export function demoPipeline(cmds: Partial<Record<'count' | 'upper' | 'report', string>> = {}): string {
  return `name: demo
stages:
  count:
    kind: command
    inputs:
      text: { path: data/words.txt }
    params:
      cmd: ${JSON.stringify(cmds.count ?? 'wc -w < "$FACEPIPE_IN_text" | tr -d " " > "$FACEPIPE_OUT_count"')}
      outputs: { count: file }
  upper:
    kind: command
    inputs:
      text: { path: data/words.txt }
    params:
      cmd: ${JSON.stringify(cmds.upper ?? 'tr a-z A-Z < {inputs.text} > {outputs.upper}')}
      outputs: { upper: file }
  report:
    kind: command
    inputs:
      n: count.count
      up: upper.upper
    params:
      cmd: ${JSON.stringify(cmds.report ?? 'mkdir -p {outputs.report} && cat {inputs.n} {inputs.up} > {outputs.report}/report.txt')}
      outputs: { report: dir }
`;
}

export const WORDS = 'alpha beta gamma\ndelta\n';
