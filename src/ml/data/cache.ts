// Cache of decoded, resized images so that later epochs decode nothing. Memory is bounded by an
// LRU byte budget; with a spill directory, evicted images are written to disk and read back
// instead of being decoded again (datasets larger than RAM).
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeImage, type ImageSize, type Rgb8Image } from './image.js';

export interface ImageCacheOptions {
  /** Memory budget in bytes for decoded pixels (default 512 MiB). */
  maxBytes?: number;
  /** Directory where evicted images are spilled; without it they are simply dropped. */
  spillDir?: string;
  /** Decoder (injectable for tests); defaults to decodeImage. */
  decode?: (file: string, size: ImageSize) => Promise<Rgb8Image>;
}

export interface ImageCacheStats {
  decodes: number;
  memoryHits: number;
  diskHits: number;
  spills: number;
  bytes: number;
  entries: number;
}

export class ImageCache {
  private readonly entries = new Map<string, Rgb8Image>(); // insertion order = LRU order
  private readonly onDisk = new Set<string>();
  private readonly pending = new Map<string, Promise<Rgb8Image>>();
  private readonly maxBytes: number;
  private readonly decode: (file: string, size: ImageSize) => Promise<Rgb8Image>;
  private bytes = 0;
  private spillDirReady: Promise<unknown> | undefined;
  readonly stats: ImageCacheStats = { decodes: 0, memoryHits: 0, diskHits: 0, spills: 0, bytes: 0, entries: 0 };

  constructor(private readonly opts: ImageCacheOptions = {}) {
    this.maxBytes = opts.maxBytes ?? 512 * 1024 * 1024;
    this.decode = opts.decode ?? decodeImage;
  }

  /** The decoded image at `size`; decodes at most once per (file, size) while it stays cached. */
  async get(file: string, size: ImageSize): Promise<Rgb8Image> {
    const key = `${size.width}x${size.height}:${size.fit ?? 'fill'}:${file}`;
    const hit = this.entries.get(key);
    if (hit) {
      this.stats.memoryHits++;
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit;
    }
    const inFlight = this.pending.get(key);
    if (inFlight) return inFlight;
    const p = this.load(key, file, size).finally(() => this.pending.delete(key));
    this.pending.set(key, p);
    return p;
  }

  private async load(key: string, file: string, size: ImageSize): Promise<Rgb8Image> {
    let img: Rgb8Image | undefined;
    if (this.onDisk.has(key)) {
      try {
        const data = await readFile(this.spillPath(key));
        if (data.length === size.width * size.height * 3) {
          img = {
            width: size.width,
            height: size.height,
            data: new Uint8Array(data.buffer, data.byteOffset, data.length),
          };
          this.stats.diskHits++;
        }
      } catch {
        this.onDisk.delete(key); // spill file vanished: decode again
      }
    }
    if (!img) {
      img = await this.decode(file, size);
      this.stats.decodes++;
    }
    this.insert(key, img);
    return img;
  }

  private insert(key: string, img: Rgb8Image): void {
    this.entries.set(key, img);
    this.bytes += img.data.byteLength;
    while (this.bytes > this.maxBytes && this.entries.size > 1) {
      const [oldKey, old] = this.entries.entries().next().value as [string, Rgb8Image];
      this.entries.delete(oldKey);
      this.bytes -= old.data.byteLength;
      if (this.opts.spillDir && !this.onDisk.has(oldKey)) void this.spill(oldKey, old);
    }
    this.stats.bytes = this.bytes;
    this.stats.entries = this.entries.size;
  }

  private spillPath(key: string): string {
    return join(this.opts.spillDir!, createHash('sha1').update(key).digest('hex') + '.rgb');
  }

  private async spill(key: string, img: Rgb8Image): Promise<void> {
    try {
      this.spillDirReady ??= mkdir(this.opts.spillDir!, { recursive: true });
      await this.spillDirReady;
      const path = this.spillPath(key);
      const tmp = `${path}.${process.pid}.tmp`;
      await writeFile(tmp, img.data);
      await rename(tmp, path);
      this.onDisk.add(key);
      this.stats.spills++;
    } catch {
      // A failed spill only costs a later re-decode.
    }
  }
}
