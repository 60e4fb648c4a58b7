// Augmentations on float32 HWC RGB images, driven by the seeded RNG (torchvision semantics of the recipe).
import { randInt, uniform, type Rng } from './rng.js';

export interface FloatImage {
  width: number;
  height: number;
  /** HWC, 3 channels. */
  data: Float32Array;
}

export interface AugmentConfig {
  /** Random crop (torchvision RandomCrop): output size, after zero `padding` on every side (default 0). */
  crop?: { width: number; height: number; padding?: number };
  /** Horizontal flip probability (the recipe: 0.5). */
  flip?: number;
  /** Rotation by U(-deg, deg), nearest neighbour, zero fill, about the centre (the pretext recipe: 30). */
  rotation?: number;
  /** Random erasing (torchvision RandomErasing): probability p (pretext recipe: 1), area scale (0.02, 0.33),
   *  aspect ratio (0.3, 3.3), fill value 0, 10 attempts. */
  erasing?: { p: number; scale?: [number, number]; ratio?: [number, number]; value?: number };
}

/** Applies crop, flip, rotation, erasing in the recipe's order. Returns a new image when any applies. */
export function augment(img: FloatImage, cfg: AugmentConfig, rng: Rng): FloatImage {
  let out = img;
  if (cfg.crop) out = randomCrop(out, cfg.crop.width, cfg.crop.height, cfg.crop.padding ?? 0, rng);
  if (cfg.flip !== undefined && cfg.flip > 0 && rng() < cfg.flip) out = hflip(out);
  if (cfg.rotation) out = rotate(out, uniform(rng, -cfg.rotation, cfg.rotation));
  if (cfg.erasing && rng() < cfg.erasing.p) out = randomErase(out, cfg.erasing, rng);
  return out;
}

/** Output size of `augment` for an input of the given size. */
export function augmentedSize(width: number, height: number, cfg: AugmentConfig): { width: number; height: number } {
  return cfg.crop ? { width: cfg.crop.width, height: cfg.crop.height } : { width, height };
}

export function hflip(img: FloatImage): FloatImage {
  const { width: w, height: h, data } = img;
  const out = new Float32Array(data.length);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const s = (y * w + (w - 1 - x)) * 3;
      const d = (y * w + x) * 3;
      out[d] = data[s]!;
      out[d + 1] = data[s + 1]!;
      out[d + 2] = data[s + 2]!;
    }
  return { width: w, height: h, data: out };
}

export function randomCrop(img: FloatImage, cw: number, ch: number, padding: number, rng: Rng): FloatImage {
  const pw = img.width + 2 * padding;
  const ph = img.height + 2 * padding;
  if (cw > pw || ch > ph) throw new Error(`crop ${cw}x${ch} is larger than the padded image ${pw}x${ph}`);
  const top = randInt(rng, ph - ch + 1);
  const left = randInt(rng, pw - cw + 1);
  const out = new Float32Array(cw * ch * 3); // zero = padding fill
  for (let y = 0; y < ch; y++) {
    const sy = y + top - padding;
    if (sy < 0 || sy >= img.height) continue;
    for (let x = 0; x < cw; x++) {
      const sx = x + left - padding;
      if (sx < 0 || sx >= img.width) continue;
      const s = (sy * img.width + sx) * 3;
      const d = (y * cw + x) * 3;
      out[d] = img.data[s]!;
      out[d + 1] = img.data[s + 1]!;
      out[d + 2] = img.data[s + 2]!;
    }
  }
  return { width: cw, height: ch, data: out };
}

/** Rotates counter-clockwise by `degrees` (as torchvision), nearest neighbour, zero outside. */
export function rotate(img: FloatImage, degrees: number): FloatImage {
  const { width: w, height: h, data } = img;
  const a = (degrees * Math.PI) / 180;
  const cos = Math.cos(a);
  const sin = Math.sin(a);
  const cx = (w - 1) / 2;
  const cy = (h - 1) / 2;
  const out = new Float32Array(data.length);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      // Inverse mapping; image y points down, so a CCW turn on screen maps back with this sign pattern.
      const dx = x - cx;
      const dy = y - cy;
      const sx = Math.round(cos * dx - sin * dy + cx);
      const sy = Math.round(sin * dx + cos * dy + cy);
      if (sx < 0 || sx >= w || sy < 0 || sy >= h) continue;
      const s = (sy * w + sx) * 3;
      const d = (y * w + x) * 3;
      out[d] = data[s]!;
      out[d + 1] = data[s + 1]!;
      out[d + 2] = data[s + 2]!;
    }
  return { width: w, height: h, data: out };
}

export function randomErase(img: FloatImage, cfg: NonNullable<AugmentConfig['erasing']>, rng: Rng): FloatImage {
  const [s0, s1] = cfg.scale ?? [0.02, 0.33];
  const [r0, r1] = cfg.ratio ?? [0.3, 3.3];
  const value = cfg.value ?? 0;
  const { width: w, height: h } = img;
  const area = w * h;
  for (let attempt = 0; attempt < 10; attempt++) {
    const eraseArea = area * uniform(rng, s0, s1);
    const aspect = Math.exp(uniform(rng, Math.log(r0), Math.log(r1)));
    const eh = Math.round(Math.sqrt(eraseArea * aspect));
    const ew = Math.round(Math.sqrt(eraseArea / aspect));
    if (!(eh < h && ew < w)) continue;
    const top = randInt(rng, h - eh + 1);
    const left = randInt(rng, w - ew + 1);
    const data = img.data.slice();
    for (let y = top; y < top + eh; y++) data.fill(value, (y * w + left) * 3, (y * w + left + ew) * 3);
    return { width: w, height: h, data };
  }
  return img;
}
