// ROC curve as a PNG: an SVG drawn here, rasterised by sharp (librsvg). Deterministic for the same curve.
import sharp from 'sharp';
import type { RocCurve } from './metrics.js';

export interface RocImageOptions {
  /** Title line, e.g. 'test (AUC 0.881)'. */
  title?: string;
  /** Curves to draw besides the main one (e.g. validation), each with a legend label. */
  extra?: Array<{ roc: RocCurve; label: string }>;
  /** Legend label of the main curve. */
  label?: string;
  size?: number;
}

const COLOURS = ['#1f5fbf', '#d9622b', '#2e9a48', '#8e44ad'];

function escapeXml(text: string): string {
  return text.replace(
    /[<>&'"]/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!,
  );
}

/** SVG text of the ROC plot (FAR on x, TAR on y, both linear 0..1, with the chance diagonal). */
export function rocSvg(roc: RocCurve, options: RocImageOptions = {}): string {
  const size = options.size ?? 480;
  const margin = { left: 56, right: 16, top: 36, bottom: 48 };
  const w = size - margin.left - margin.right;
  const h = size - margin.top - margin.bottom;
  const x = (far: number) => (margin.left + far * w).toFixed(2);
  const y = (tar: number) => (margin.top + (1 - tar) * h).toFixed(2);
  const curves = [{ roc, label: options.label ?? 'ROC' }, ...(options.extra ?? [])];
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}" viewBox="0 0 ${size} ${size}">`);
  parts.push(`<rect width="${size}" height="${size}" fill="white"/>`);
  // Grid and ticks every 0.2.
  for (let i = 0; i <= 5; i++) {
    const v = i / 5;
    parts.push(`<line x1="${x(v)}" y1="${y(0)}" x2="${x(v)}" y2="${y(1)}" stroke="#e5e5e5"/>`);
    parts.push(`<line x1="${x(0)}" y1="${y(v)}" x2="${x(1)}" y2="${y(v)}" stroke="#e5e5e5"/>`);
    parts.push(
      `<text x="${x(v)}" y="${(margin.top + h + 16).toFixed(2)}" font-family="sans-serif" font-size="11" text-anchor="middle">${v.toFixed(1)}</text>`,
    );
    parts.push(
      `<text x="${(margin.left - 6).toFixed(2)}" y="${(Number(y(v)) + 4).toFixed(2)}" font-family="sans-serif" font-size="11" text-anchor="end">${v.toFixed(1)}</text>`,
    );
  }
  parts.push(`<rect x="${margin.left}" y="${margin.top}" width="${w}" height="${h}" fill="none" stroke="#333"/>`);
  parts.push(`<line x1="${x(0)}" y1="${y(0)}" x2="${x(1)}" y2="${y(1)}" stroke="#999" stroke-dasharray="4 4"/>`);
  curves.forEach((c, i) => {
    const points = c.roc.far.map((f, k) => `${x(f)},${y(c.roc.tar[k])}`).join(' ');
    const colour = COLOURS[i % COLOURS.length];
    parts.push(`<polyline points="${points}" fill="none" stroke="${colour}" stroke-width="2"/>`);
    const ly = margin.top + h - 12 - (curves.length - 1 - i) * 16;
    parts.push(
      `<line x1="${margin.left + w - 200}" y1="${ly - 4}" x2="${margin.left + w - 180}" y2="${ly - 4}" stroke="${colour}" stroke-width="2"/>`,
    );
    parts.push(
      `<text x="${margin.left + w - 175}" y="${ly}" font-family="sans-serif" font-size="12">${escapeXml(c.label)}</text>`,
    );
  });
  parts.push(
    `<text x="${(margin.left + w / 2).toFixed(2)}" y="${size - 12}" font-family="sans-serif" font-size="13" text-anchor="middle">false accept rate</text>`,
  );
  parts.push(
    `<text x="14" y="${(margin.top + h / 2).toFixed(2)}" font-family="sans-serif" font-size="13" text-anchor="middle" transform="rotate(-90 14 ${(margin.top + h / 2).toFixed(2)})">true accept rate</text>`,
  );
  if (options.title) {
    parts.push(
      `<text x="${(size / 2).toFixed(2)}" y="22" font-family="sans-serif" font-size="14" text-anchor="middle">${escapeXml(options.title)}</text>`,
    );
  }
  parts.push('</svg>');
  return parts.join('\n');
}

/** Writes the ROC plot as a PNG file. */
export async function writeRocPng(file: string, roc: RocCurve, options: RocImageOptions = {}): Promise<void> {
  await sharp(Buffer.from(rocSvg(roc, options)))
    .png()
    .toFile(file);
}
