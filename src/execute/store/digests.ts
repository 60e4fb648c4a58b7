// Content digests of files and folders, with a stat cache: a file whose (device, inode, size, mtime, ctime)
// are unchanged since it was last hashed is not read again. ctime changes on any write (and cannot be set
// by tools), so an in-place edit is always seen.
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalJson, hashFile, sha256 } from '../../core/hash.js';
import { FacepipeError } from '../../core/errors.js';
import { isPlainObject } from '../../core/objects.js';
import { isSha256, readSealed, writeSealed } from '../../core/sealed.js';
import type { OutputType } from '../../contracts/records.js';

export type { OutputType };

interface StatEntry {
  sig: string;
  digest: string;
}

export interface ManifestEntry {
  path: string;
  digest: string;
  size: number;
  exec?: true;
}
export interface DirManifest {
  type: 'dir';
  entries: ManifestEntry[];
}

function isStatCache(v: unknown): v is Record<string, StatEntry> {
  return (
    isPlainObject(v) &&
    Object.values(v).every((e) => isPlainObject(e) && typeof e.sig === 'string' && isSha256(e.digest))
  );
}

export class Digests {
  private entries = new Map<string, StatEntry>();
  private dirty = false;
  private loaded = false;
  /**
   * `file`: where the stat cache persists; undefined keeps it in memory only (a job beside the runner).
   * The file is sealed (a digest of its own content): an edited digest in it is never trusted, the whole
   * cache is dropped with a warning and files are hashed again.
   */
  constructor(
    private readonly file?: string,
    private readonly warn: (file: string, why: string, then: string) => void = () => {},
  ) {}

  private load(): void {
    if (this.loaded) return;
    this.loaded = true;
    if (!this.file) return;
    const r = readSealed(this.file, isStatCache);
    if (r.state === 'ok') this.entries = new Map(Object.entries(r.value));
    else if (r.state === 'bad') {
      this.warn(this.file, r.why, 'every file is hashed again');
      this.dirty = true; // rewrite it sealed
    }
  }

  save(): void {
    if (!this.dirty || !this.file) return;
    writeSealed(this.file, Object.fromEntries(this.entries));
    this.dirty = false;
  }

  /** sha256 of a regular file, from the stat cache when the file is provably unchanged. */
  async fileDigest(path: string): Promise<{ digest: string; size: number; exec: boolean }> {
    this.load();
    // Synchronous stat: a folder of many small files costs one thread-pool round trip per call otherwise.
    const st = lstatSync(path, { bigint: true });
    if (!st.isFile()) throw new Error(`${path} is not a regular file`);
    const sig = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
    const hit = this.entries.get(path);
    const exec = (Number(st.mode) & 0o111) !== 0;
    if (hit && hit.sig === sig) return { digest: hit.digest, size: Number(st.size), exec };
    const digest = await hashFile(path);
    this.entries.set(path, { sig, digest });
    this.dirty = true;
    return { digest, size: Number(st.size), exec };
  }

  /** Manifest of a folder: every regular file below it, sorted. Symlinks and special files are refused. */
  async dirManifest(dir: string): Promise<DirManifest> {
    const entries: ManifestEntry[] = [];
    const walk = async (rel: string) => {
      const names = readdirSync(join(dir, rel)).sort();
      for (const name of names) {
        const r = rel ? `${rel}/${name}` : name;
        const abs = join(dir, r);
        const st = lstatSync(abs);
        if (st.isDirectory()) await walk(r);
        else if (st.isFile()) {
          const d = await this.fileDigest(abs);
          entries.push(
            d.exec
              ? { path: r, digest: d.digest, size: d.size, exec: true }
              : { path: r, digest: d.digest, size: d.size },
          );
        } else {
          throw new FacepipeError({
            code: 'unsupported-file',
            message: `${abs} is a ${st.isSymbolicLink() ? 'symlink' : 'special file'}; outputs and inputs may hold only regular files and folders`,
            hint: 'copy the target instead of linking it',
          });
        }
      }
    };
    await walk('');
    return { type: 'dir', entries };
  }

  /** Digest of a file or folder (a folder's digest is that of its canonical manifest). */
  /**
   * Digest of a pipeline's input path, computed once per Digests instance (one run): several stages reading
   * the same dataset folder walk it once.
   */
  inputDigest(path: string): Promise<{ type: OutputType; digest: string }> {
    let d = this.inputs.get(path);
    if (!d) {
      d = this.pathDigest(path);
      this.inputs.set(path, d);
    }
    return d;
  }
  private inputs = new Map<string, Promise<{ type: OutputType; digest: string }>>();

  async pathDigest(path: string): Promise<{ type: OutputType; digest: string; manifest?: DirManifest }> {
    const st = lstatSync(path);
    if (st.isDirectory()) {
      const manifest = await this.dirManifest(path);
      return { type: 'dir', digest: manifestDigest(manifest), manifest };
    }
    if (st.isFile()) return { type: 'file', digest: (await this.fileDigest(path)).digest };
    throw new FacepipeError({
      code: 'unsupported-file',
      message: `${path} is neither a regular file nor a folder`,
      hint: 'point the input at a real file or folder',
    });
  }
}

export function manifestJson(m: DirManifest): string {
  return canonicalJson(m);
}

export function manifestDigest(m: DirManifest): string {
  return sha256(manifestJson(m));
}
