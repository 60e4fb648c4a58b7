// The one cache: a content-addressed store of output bytes plus one record per completed stage key.
//   .facepipe/store/objects/ab/cdef...   file contents and folder manifests, named by sha256
//   .facepipe/store/stages/<key>.json    the record, written last: no record, no cache hit
//   .facepipe/store/epochs/<prefix>/<epoch>.json   a training stage's state at an epoch (epoch-prefix reuse)
// Objects are written under a temporary name, fsynced and renamed; a record is committed only after all its
// objects are in place. Restoring re-checks digests (cheaply, through the stat cache), so a corrupt or missing
// object means a rerun, never silent use. A record is sealed (a digest of its own content) and checked against a
// small schema and its own key when read: an edited record (metrics included) is treated as absent, with a warning.
import { chmod, copyFile, constants, mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import type { CacheEntry, EpochStateRecord, KeyMaterial, StageRecord, StoredOutput } from '../../contracts/records.js';
import { fsyncDir, parseTmpName, tmpName, writeError, writeFileAtomic } from '../../core/fsutil.js';
import { hashValue, sha256 } from '../../core/hash.js';
import { isPlainObject } from '../../core/objects.js';
import { isSha256, readSealed, writeSealed } from '../../core/sealed.js';
import { prefixKey } from '../../plan/keys.js';
import { Digests, manifestDigest, manifestJson, type DirManifest } from './digests.js';

export type { StageRecord, StoredOutput };

export function isKeyMaterial(v: unknown): v is KeyMaterial {
  return (
    isPlainObject(v) &&
    typeof v.kind === 'string' &&
    typeof v.kindVersion === 'string' &&
    isPlainObject(v.params) &&
    isPlainObject(v.inputs) &&
    Object.values(v.inputs).every((d) => typeof d === 'string')
  );
}

function isStoredOutput(v: unknown): v is StoredOutput {
  return (
    isPlainObject(v) &&
    (v.type === 'file' || v.type === 'dir') &&
    isSha256(v.digest) &&
    (v.exec === undefined || v.exec === true)
  );
}

const isContinuedFrom = (v: unknown) =>
  v === undefined || (isPlainObject(v) && Number.isInteger(v.epoch) && isSha256(v.key));

/** The record's shape, and that it is the record of `key` (its material hashes to it). */
function recordOf(key: string) {
  return (v: unknown): v is StageRecord =>
    isPlainObject(v) &&
    isContinuedFrom(v.continuedFrom) &&
    v.key === key &&
    typeof v.stage === 'string' &&
    isKeyMaterial(v.material) &&
    hashValue(v.material) === key &&
    isPlainObject(v.outputs) &&
    Object.values(v.outputs).every(isStoredOutput) &&
    typeof v.completedAt === 'string' &&
    typeof v.durationMs === 'number' &&
    isPlainObject(v.metrics) &&
    Object.values(v.metrics).every((m) => typeof m === 'number' || typeof m === 'string' || m === null);
}

/**
 * An epoch state record's shape, and that it is the state of `prefix` at `epoch`: its material has that epoch count,
 * hashes to its key, and without the epochs param to the prefix (a state filed under another prefix is refused).
 */
function epochStateOf(prefix: string, epoch: number) {
  return (v: unknown): v is EpochStateRecord =>
    isPlainObject(v) &&
    v.prefix === prefix &&
    v.epoch === epoch &&
    typeof v.param === 'string' &&
    typeof v.stage === 'string' &&
    isKeyMaterial(v.material) &&
    v.material.params[v.param] === epoch &&
    hashValue(v.material) === v.key &&
    prefixKey(v.material, v.param) === prefix &&
    isStoredOutput(v.state) &&
    v.state.type === 'dir' &&
    typeof v.completedAt === 'string';
}

export class Store {
  readonly objectsDir: string;
  readonly recordsDir: string;
  readonly epochsDir: string;
  constructor(
    readonly root: string,
    readonly digests: Digests,
    private readonly warn: (file: string, why: string, then: string) => void = () => {},
  ) {
    this.objectsDir = join(root, 'objects');
    this.recordsDir = join(root, 'stages');
    this.epochsDir = join(root, 'epochs');
  }

  objectPath(digest: string): string {
    return join(this.objectsDir, digest.slice(0, 2), digest.slice(2));
  }

  recordPath(key: string): string {
    return join(this.recordsDir, `${key}.json`);
  }

  /** The record of `key`; undefined when there is none or it is damaged (edited, truncated, wrong shape). */
  readRecord(key: string): StageRecord | undefined {
    const r = this.readRecordChecked(key);
    return r.state === 'ok' ? r.value : undefined;
  }

  private readRecordChecked(key: string) {
    const p = this.recordPath(key);
    const r = readSealed(p, recordOf(key));
    if (r.state === 'bad') this.warn(p, r.why, 'the stage runs again');
    return r;
  }

  epochStatePath(prefix: string, epoch: number): string {
    return join(this.epochsDir, prefix, `${epoch}.json`);
  }

  /** Written after the state's objects are in place (and before the stage's own record). */
  writeEpochState(r: EpochStateRecord): void {
    writeSealed(this.epochStatePath(r.prefix, r.epoch), r, { space: 1 });
  }

  /** The state record of `prefix` at `epoch`; undefined when there is none or it is damaged (with a warning). */
  readEpochState(prefix: string, epoch: number): EpochStateRecord | undefined {
    const p = this.epochStatePath(prefix, epoch);
    const r = readSealed(p, epochStateOf(prefix, epoch));
    if (r.state === 'bad') this.warn(p, r.why, 'that epoch is trained again');
    return r.state === 'ok' ? r.value : undefined;
  }

  /** Epochs with a state record under `prefix`, highest first. */
  epochStateEpochs(prefix: string): number[] {
    const dir = join(this.epochsDir, prefix);
    if (!isSha256(prefix) || !existsSync(dir)) return [];
    return readdirSync(dir)
      .flatMap((f) => (/^(0|[1-9]\d{0,8})\.json$/.test(f) ? [Number(f.slice(0, -5))] : []))
      .sort((a, b) => b - a);
  }

  /** The intact state of `prefix` at the highest epoch <= atMost: its record is sound and every object it names. */
  async bestEpochState(prefix: string, atMost: number): Promise<EpochStateRecord | undefined> {
    for (const epoch of this.epochStateEpochs(prefix)) {
      if (epoch > atMost || epoch <= 0) continue;
      const r = this.readEpochState(prefix, epoch);
      if (r && (await this.verify(r.state))) return r;
      if (r) this.warn(this.epochStatePath(prefix, epoch), 'an object it names is missing or corrupt', 'not used');
    }
    return undefined;
  }

  /** Every epoch state record (gc), with its file; damaged ones as undefined. */
  allEpochStates(): Array<{ file: string; record: EpochStateRecord | undefined }> {
    if (!existsSync(this.epochsDir)) return [];
    const out: Array<{ file: string; record: EpochStateRecord | undefined }> = [];
    for (const prefix of readdirSync(this.epochsDir).sort()) {
      const dir = join(this.epochsDir, prefix);
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch {
        out.push({ file: dir, record: undefined }); // not a folder
        continue;
      }
      for (const f of names) {
        if (parseTmpName(f)) continue; // being written, or left by a dead writer: the leftovers sweep decides
        const m = /^(0|[1-9]\d{0,8})\.json$/.exec(f);
        const record = m && isSha256(prefix) ? this.readEpochState(prefix, Number(m[1])) : undefined;
        out.push({ file: join(dir, f), record });
      }
    }
    return out;
  }

  /** Remove an epoch state record (gc), and its prefix folder once empty. */
  removeEpochState(file: string): void {
    rmSync(file, { recursive: true, force: true });
    const dir = dirname(file);
    if (dir !== this.epochsDir && existsSync(dir) && !readdirSync(dir).length) rmSync(dir, { recursive: true });
  }

  /** Commit point of a stage: called only after every output object is stored. */
  writeRecord(r: StageRecord): void {
    writeSealed(this.recordPath(r.key), r, { space: 1 });
  }

  private async putBytesFrom(src: string, digest: string): Promise<void> {
    const dest = this.objectPath(digest);
    if (await this.objectOk(digest)) return;
    await mkdir(dirname(dest), { recursive: true });
    const tmp = tmpName(dest);
    try {
      await copyFile(src, tmp);
      await fsyncFile(tmp);
      await chmod(tmp, 0o444);
      await rename(tmp, dest);
    } catch (e) {
      await rm(tmp, { force: true });
      throw writeError(dest, e);
    }
    fsyncDir(dirname(dest));
  }

  private async putText(text: string): Promise<string> {
    const digest = sha256(text);
    if (!(await this.objectOk(digest))) {
      const dest = this.objectPath(digest);
      writeFileAtomic(dest, text);
      await chmod(dest, 0o444);
    }
    return digest;
  }

  /** Is the object present with the right content? (stat cache: re-read only if the file changed) */
  async objectOk(digest: string): Promise<boolean> {
    const p = this.objectPath(digest);
    try {
      return (await this.digests.fileDigest(p)).digest === digest;
    } catch {
      return false;
    }
  }

  /** Copy a stage's output (file or folder) into the store; returns what the record keeps. */
  async ingest(path: string): Promise<StoredOutput> {
    const d = await this.digests.pathDigest(path);
    if (d.type === 'file') {
      await this.putBytesFrom(path, d.digest);
      return (await this.digests.fileDigest(path)).exec
        ? { type: 'file', digest: d.digest, exec: true }
        : { type: 'file', digest: d.digest };
    }
    for (const e of d.manifest!.entries) await this.putBytesFrom(join(path, e.path), e.digest);
    const digest = await this.putText(manifestJson(d.manifest!));
    if (digest !== d.digest) throw new Error('manifest digest mismatch');
    return { type: 'dir', digest };
  }

  async readManifest(digest: string): Promise<DirManifest> {
    return JSON.parse(await readFile(this.objectPath(digest), 'utf8')) as DirManifest;
  }

  /** Every object an output needs is present and intact. */
  async verify(out: StoredOutput): Promise<boolean> {
    if (!(await this.objectOk(out.digest))) return false;
    if (out.type === 'file') return true;
    let m: DirManifest;
    try {
      m = await this.readManifest(out.digest);
    } catch {
      return false;
    }
    if (manifestDigest(m) !== out.digest) return false;
    for (const e of m.entries) if (!(await this.objectOk(e.digest))) return false;
    return true;
  }

  /** The cache entry for a key: a record whose every object is present and intact, a damaged one, or none. */
  async lookup(key: string): Promise<CacheEntry> {
    const r = this.readRecordChecked(key);
    if (r.state === 'absent') return { state: 'absent' };
    if (r.state === 'bad') return { state: 'damaged' };
    return (await this.verifyRecord(r.value)) ? { state: 'intact', record: r.value } : { state: 'damaged' };
  }

  async verifyRecord(r: StageRecord): Promise<boolean> {
    for (const o of Object.values(r.outputs)) if (!(await this.verify(o))) return false;
    return true;
  }

  /**
   * Put an output at `dest` (a path inside the workspace). Skipped when dest already holds exactly that
   * content. Built beside dest and renamed in, so dest never holds a mix. Copies, never links, so that a
   * user editing a result cannot damage the store.
   */
  async materialize(out: StoredOutput, dest: string): Promise<void> {
    try {
      if ((await this.digests.pathDigest(dest)).digest === out.digest) return;
    } catch {
      /* missing or unreadable: rebuild */
    }
    await mkdir(dirname(dest), { recursive: true });
    const tmp = tmpName(dest);
    try {
      await this.build(out, tmp);
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      throw writeError(dest, e);
    }
    await rm(dest, { recursive: true, force: true });
    await rename(tmp, dest);
  }

  private async build(out: StoredOutput, tmp: string): Promise<void> {
    if (out.type === 'file') {
      await copyFile(this.objectPath(out.digest), tmp, constants.COPYFILE_FICLONE);
      await chmod(tmp, out.exec ? 0o755 : 0o644);
    } else {
      const m = await this.readManifest(out.digest);
      await mkdir(tmp, { recursive: true });
      for (const e of m.entries) {
        const target = join(tmp, e.path);
        if (e.path.split('/').includes('..')) throw new Error(`manifest entry escapes its folder: ${e.path}`);
        await mkdir(dirname(target), { recursive: true });
        await copyFile(this.objectPath(e.digest), target, constants.COPYFILE_FICLONE);
        await chmod(target, e.exec ? 0o755 : 0o644);
      }
    }
  }
}

async function fsyncFile(path: string): Promise<void> {
  const { open } = await import('node:fs/promises');
  const fh = await open(path, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}
