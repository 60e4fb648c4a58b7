// Headless Chromium for the report test, without npm dependencies: the page gets a probe script that records
// errors and measures what rendered, writes its findings into the DOM, and `--dump-dom` hands that back.
// Console messages are also caught from Chromium's own log (--enable-logging=stderr).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { pathToFileURL } from 'node:url';

const INSTALL_HINT =
  'Chromium is required for the report test: install it with `apt-get update && apt-get install -y chromium` ' +
  '(CI does this in .ci/run), or set CHROMIUM_PATH to a Chromium/Chrome binary.';

/** The Chromium binary, or an Error that says how to install it (the test must fail, not skip). */
export function findChromium(): string {
  const env = process.env.CHROMIUM_PATH;
  if (env) {
    if (existsSync(env)) return env;
    throw new Error(`CHROMIUM_PATH=${env} does not exist. ${INSTALL_HINT}`);
  }
  const names = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];
  const dirs = ['/usr/bin', ...(process.env.PATH ?? '').split(delimiter).filter(Boolean)];
  for (const d of dirs) for (const n of names) if (existsSync(join(d, n))) return join(d, n);
  throw new Error(`Chromium not found (looked for ${names.join(', ')} in /usr/bin and PATH). ${INSTALL_HINT}`);
}

// Runs first in <head>: keeps every error, console.error/warn, alert and CSP violation.
const HEAD_PROBE = `<script>(function(){var f=window.__probe={errors:[],alerts:0};
window.addEventListener('error',function(e){f.errors.push('error: '+(e.message||String(e)));});
window.addEventListener('unhandledrejection',function(e){f.errors.push('rejection: '+String(e.reason));});
document.addEventListener('securitypolicyviolation',function(e){f.errors.push('csp: '+e.violatedDirective+' '+e.blockedURI);});
['error','warn'].forEach(function(k){var o=console[k];console[k]=function(){f.errors.push('console.'+k+': '+Array.prototype.join.call(arguments,' '));return o.apply(console,arguments);};});
window.alert=function(){f.alerts++;};})();</script>`;

export interface ProbeResult {
  /** Whatever the page script `measure` returned (JSON). */
  data: unknown;
  errors: string[];
  alerts: number;
  /** Console lines from Chromium's log (any console output of the page counts). */
  consoleLines: string[];
  ms: number;
}

/**
 * Load `html` in headless Chromium with `measure` (the body of a function returning a JSON-able value,
 * run after the page's own scripts) and return what it measured plus every error seen.
 */
export async function probePage(html: string, measure: string, timeoutMs = 20000): Promise<ProbeResult> {
  const bin = findChromium();
  const dir = mkdtempSync(join(tmpdir(), 'facepipe-chromium-'));
  const tail = `<script>(function(){var f=window.__probe,out;try{out=(function(){${measure}})();}catch(e){f.errors.push('probe: '+e);}
var s=JSON.stringify({data:out===undefined?null:out,errors:f.errors,alerts:f.alerts});
var pre=document.createElement('pre');pre.id='facepipe-probe';pre.textContent=btoa(unescape(encodeURIComponent(s)));document.body.appendChild(pre);})();</script>`;
  const withHead = html.replace(/<head>/i, (m) => m + HEAD_PROBE);
  const page = withHead.replace(/<\/body>/i, tail + '</body>');
  const file = join(dir, 'page.html');
  writeFileSync(file, page);
  const started = Date.now();
  try {
    const args = [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--no-default-browser-check',
      '--disable-extensions',
      '--mute-audio',
      `--user-data-dir=${join(dir, 'profile')}`,
      '--enable-logging=stderr',
      '--v=0',
      '--window-size=1280,1024',
      '--dump-dom',
      pathToFileURL(file).href,
    ];
    const { stdout, stderr, code } = await new Promise<{ stdout: string; stderr: string; code: number | null }>(
      (resolve, reject) => {
        const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
        let out = '';
        let err = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
        });
        child.stderr.on('data', (d: Buffer) => {
          err += d.toString();
        });
        const timer = setTimeout(() => {
          // Our own Chromium and its helper processes (its own process group, see detached above).
          try {
            process.kill(-child.pid!, 'SIGKILL');
          } catch {
            /* already gone */
          }
          reject(new Error(`Chromium did not finish within ${timeoutMs} ms\n${err.slice(-2000)}`));
        }, timeoutMs);
        child.on('error', (e) => {
          clearTimeout(timer);
          reject(new Error(`cannot start ${bin}: ${e.message}. ${INSTALL_HINT}`));
        });
        child.on('close', (c) => {
          clearTimeout(timer);
          resolve({ stdout: out, stderr: err, code: c });
        });
      },
    );
    const m = /<pre id="facepipe-probe">([A-Za-z0-9+/=]*)<\/pre>/.exec(stdout);
    if (!m) throw new Error(`no probe output from Chromium (exit ${code}); stderr tail:\n${stderr.slice(-3000)}`);
    const found = JSON.parse(Buffer.from(m[1], 'base64').toString('utf8')) as {
      data: unknown;
      errors: string[];
      alerts: number;
    };
    const consoleLines = stderr.split('\n').filter((l) => /:CONSOLE[:(\]]/.test(l));
    return { ...found, consoleLines, ms: Date.now() - started };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
