// ROC curve as a PNG: an SVG drawn here, rasterised by sharp (librsvg). Two panels side by side: linear FAR,
// and log FAR (face verification is judged at FAR 1e-2 and 1e-3, which the linear axis squeezes into its
// left edge); the main curve's equal-error point is marked on both. Deterministic for the same curve.
import sharp from 'sharp';
import { equalErrorRate, type RocCurve } from './metrics.js';

export interface RocImageOptions {
  /** Title line, e.g. 'test (AUC 0.881)'. */
  title?: string;
  /** Curves to draw besides the main one (e.g. validation), each with a legend label. */
  extra?: Array<{ roc: RocCurve; label: string }>;
  /** Legend label of the main curve. */
  label?: string;
  /** Size of one panel (the image is two panels wide). */
  size?: number;
}

const COLOURS = ['#1f5fbf', '#d9622b', '#2e9a48', '#8e44ad'];
const FONT = 'font-family="sans-serif"';
const MARGIN = { left: 56, right: 16, top: 36, bottom: 48 };

function escapeXml(text: string): string {
  return text.replace(
    /[<>&'"]/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!,
  );
}

/** The lowest decade shown on the log axis: below the smallest non-zero FAR, between 1e-4 and 1e-1. */
export function logFarFloor(curves: RocCurve[]): number {
  const positive = curves.flatMap((c) => c.far.filter((f) => f > 0));
  const min = positive.length ? Math.min(...positive) : 1e-3;
  return Number(`1e${Math.min(-1, Math.max(-4, Math.floor(Math.log10(min))))}`);
}

interface Panel {
  /** Left edge of the panel in the image. */
  x0: number;
  size: number;
  log: boolean;
  lo: number;
}

function panelScales(p: Panel) {
  const w = p.size - MARGIN.left - MARGIN.right;
  const h = p.size - MARGIN.top - MARGIN.bottom;
  const t = (far: number) => (p.log ? (Math.log10(Math.max(far, p.lo)) - Math.log10(p.lo)) / -Math.log10(p.lo) : far);
  return {
    w,
    h,
    x: (far: number) => (p.x0 + MARGIN.left + t(far) * w).toFixed(2),
    y: (tar: number) => (MARGIN.top + (1 - tar) * h).toFixed(2),
  };
}

/** Frame, grid, ticks and axis labels of one panel. */
function axes(p: Panel): string[] {
  const { w, h, x, y } = panelScales(p);
  const parts: string[] = [];
  const xTicks = p.log
    ? Array.from({ length: Math.round(-Math.log10(p.lo)) + 1 }, (_, i) => Number(`${p.lo}e${i}`))
    : [0, 0.2, 0.4, 0.6, 0.8, 1];
  const label = (v: number) => (p.log ? (v === 1 ? '1' : `1e${Math.round(Math.log10(v))}`) : v.toFixed(1));
  for (const v of xTicks) {
    parts.push(`<line x1="${x(v)}" y1="${y(0)}" x2="${x(v)}" y2="${y(1)}" stroke="#e5e5e5"/>`);
    parts.push(
      `<text x="${x(v)}" y="${(MARGIN.top + h + 16).toFixed(2)}" ${FONT} font-size="11" text-anchor="middle">${label(v)}</text>`,
    );
  }
  for (let i = 0; i <= 5; i++) {
    const v = i / 5;
    parts.push(`<line x1="${x(p.log ? p.lo : 0)}" y1="${y(v)}" x2="${x(1)}" y2="${y(v)}" stroke="#e5e5e5"/>`);
    parts.push(
      `<text x="${(p.x0 + MARGIN.left - 6).toFixed(2)}" y="${(Number(y(v)) + 4).toFixed(2)}" ${FONT} font-size="11" text-anchor="end">${v.toFixed(1)}</text>`,
    );
  }
  parts.push(
    `<rect x="${p.x0 + MARGIN.left}" y="${MARGIN.top}" width="${w}" height="${h}" fill="none" stroke="#333"/>`,
  );
  parts.push(
    `<text x="${(p.x0 + MARGIN.left + w / 2).toFixed(2)}" y="${p.size - 12}" ${FONT} font-size="13" text-anchor="middle">false accept rate${p.log ? ' (log)' : ''}</text>`,
  );
  const cy = (MARGIN.top + h / 2).toFixed(2);
  parts.push(
    `<text x="${p.x0 + 14}" y="${cy}" ${FONT} font-size="13" text-anchor="middle" transform="rotate(-90 ${p.x0 + 14} ${cy})">true accept rate</text>`,
  );
  return parts;
}

/** One panel: axes, chance line, curves, the EER point of the first curve, legend. */
function panel(p: Panel, curves: Array<{ roc: RocCurve; label: string }>, eer: number): string[] {
  const { w, h, x, y } = panelScales(p);
  const parts = axes(p);
  // Chance (TAR = FAR): a straight diagonal on the linear axis, a curve on the log one.
  const chance = p.log ? Array.from({ length: 41 }, (_, i) => p.lo ** (1 - i / 40)) : [0, 1];
  parts.push(
    `<polyline points="${chance.map((f) => `${x(f)},${y(f)}`).join(' ')}" fill="none" stroke="#999" stroke-dasharray="4 4" class="chance"/>`,
  );
  curves.forEach((c, i) => {
    const points = c.roc.far.map((f, k) => `${x(f)},${y(c.roc.tar[k])}`).join(' ');
    const colour = COLOURS[i % COLOURS.length];
    parts.push(`<polyline points="${points}" fill="none" stroke="${colour}" stroke-width="2" class="curve"/>`);
    const ly = MARGIN.top + h - 12 - (curves.length - 1 - i) * 16;
    const lx = p.x0 + MARGIN.left + w - 200;
    parts.push(`<line x1="${lx}" y1="${ly - 4}" x2="${lx + 20}" y2="${ly - 4}" stroke="${colour}" stroke-width="2"/>`);
    parts.push(`<text x="${lx + 25}" y="${ly}" ${FONT} font-size="12">${escapeXml(c.label)}</text>`);
  });
  const ex = x(eer);
  const ey = y(1 - eer);
  parts.push(
    `<circle cx="${ex}" cy="${ey}" r="5" fill="none" stroke="#000" stroke-width="2" class="eer"/>` +
      `<text x="${(Number(ex) + 8).toFixed(2)}" y="${(Number(ey) - 8).toFixed(2)}" ${FONT} font-size="12">EER ${eer.toFixed(3)}</text>`,
  );
  return parts;
}

/** SVG text of the ROC plot: linear-FAR and log-FAR panels, both with the chance line and the EER point. */
export function rocSvg(roc: RocCurve, options: RocImageOptions = {}): string {
  const size = options.size ?? 480;
  const curves = [{ roc, label: options.label ?? 'ROC' }, ...(options.extra ?? [])];
  const eer = equalErrorRate(roc);
  const lo = logFarFloor(curves.map((c) => c.roc));
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * size}" height="${size}" viewBox="0 0 ${2 * size} ${size}">`,
  );
  parts.push(`<rect width="${2 * size}" height="${size}" fill="white"/>`);
  parts.push(...panel({ x0: 0, size, log: false, lo }, curves, eer));
  parts.push(...panel({ x0: size, size, log: true, lo }, curves, eer));
  if (options.title) {
    parts.push(
      `<text x="${size.toFixed(2)}" y="22" ${FONT} font-size="14" text-anchor="middle">${escapeXml(options.title)}</text>`,
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
