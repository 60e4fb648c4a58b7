// Small inline-SVG plotting for the report: axes with readable ticks (linear, log or categorical x), point and
// line series, a legend. Every piece of text goes through escapeHtml, so names and values cannot inject markup.

export function escapeHtml(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

export const PALETTE = [
  '#1f77b4',
  '#d62728',
  '#2ca02c',
  '#ff7f0e',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#17becf',
  '#7f7f7f',
  '#bcbd22',
];
const DASHES = ['', '6 3', '2 2', '8 3 2 3'];

export interface PlotPoint {
  x: number;
  y: number;
  /** Tooltip text. */ title?: string;
}

export interface PlotSeries {
  label: string;
  points: PlotPoint[];
  /** Join the points in the given order with a line; 'mean': through the mean y at each x (repeats at one x). */
  line?: boolean | 'mean';
  /** Draw a marker at each point. */
  markers?: boolean;
}

export interface PlotOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  /** 'category': x values are indices into `categories`. */
  xScale?: 'linear' | 'log' | 'category';
  categories?: string[];
  xDomain?: [number, number];
  yDomain?: [number, number];
  /** Dashed y = x reference line (ROC chance level). */
  diagonal?: boolean;
  width?: number;
  height?: number;
  /** A class for the <svg> element. */
  className?: string;
  /** Unique within the page (names the clip path); letters, digits, '-'. */
  id?: string;
  /** Heading above the legend entries, e.g. the param the series differ in. */
  legendTitle?: string;
}

/** Round tick positions (1, 2, 5 times a power of ten) covering [lo, hi] with about `count` ticks. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step)
    out.push(Number(v.toPrecision(12)));
  return out;
}

/** Powers of ten inside [lo, hi] (lo > 0); adds 2 and 5 multiples when that gives too few. */
export function logTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of [1, 2, 5]) {
      const v = Number((m * 10 ** e).toPrecision(12));
      if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) out.push(v);
    }
  }
  const powers = out.filter(
    (v) => Number.isInteger(Math.log10(v)) || Math.abs(Math.log10(v) - Math.round(Math.log10(v))) < 1e-9,
  );
  return powers.length >= 3 ? powers : out;
}

export function tickLabel(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(0).replace('e+', 'e');
  return String(Number(v.toPrecision(4)));
}

function fmt(n: number): string {
  return String(Math.round(n * 10) / 10);
}

function padDomain([lo, hi]: [number, number]): [number, number] {
  if (hi > lo) {
    const pad = (hi - lo) * 0.05;
    return [lo - pad, hi + pad];
  }
  const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
  return [lo - pad, hi + pad];
}

/** Points sorted by x with repeats at one x replaced by their mean y. */
function meanByX(points: PlotPoint[]): PlotPoint[] {
  const byX = new Map<number, { sum: number; n: number }>();
  for (const p of points) {
    const g = byX.get(p.x) ?? { sum: 0, n: 0 };
    g.sum += p.y;
    g.n++;
    byX.set(p.x, g);
  }
  return [...byX.entries()].sort((a, b) => a[0] - b[0]).map(([x, g]) => ({ x, y: g.sum / g.n }));
}

/** One plot as an <svg> element string: axes, ticks, grid, series, legend (when more than one labelled series). */
export function plotSvg(series: PlotSeries[], o: PlotOptions): string {
  const legendItems = series.filter((s) => s.label !== '');
  const showLegend = legendItems.length > 1 || (legendItems.length === 1 && series.length === 1 && o.diagonal);
  const LEGEND_CHARS = 44;
  const longest = Math.max(
    o.legendTitle?.length ?? 0,
    ...legendItems.map((s) => Math.min(LEGEND_CHARS, s.label.length)),
  );
  const legendWidth = showLegend ? Math.min(330, 40 + longest * 6.3) : 0;
  const plotW = o.width ?? 360;
  const plotH = o.height ?? 260;
  const m = { left: 58, right: 14, top: 28, bottom: 46 };
  const legendRows = legendItems.length + (o.legendTitle ? 1 : 0);
  const legendH = showLegend ? m.top + legendRows * 16 + 8 : 0;
  const W = m.left + plotW + m.right + legendWidth;
  const H = Math.max(m.top + plotH + m.bottom, legendH);
  const all = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const xs = all.map((p) => p.x);
  const ys = all.map((p) => p.y);
  const scale = o.xScale ?? 'linear';
  let xDom: [number, number];
  if (o.xDomain) xDom = o.xDomain;
  else if (scale === 'category') xDom = [-0.5, Math.max(0, (o.categories?.length ?? 1) - 1) + 0.5];
  else if (scale === 'log') {
    const lo = Math.min(...xs);
    const hi = Math.max(...xs);
    xDom = [lo / 1.3, hi * 1.3];
  } else xDom = padDomain(xs.length ? [Math.min(...xs), Math.max(...xs)] : [0, 1]);
  const yDom = o.yDomain ?? padDomain(ys.length ? [Math.min(...ys), Math.max(...ys)] : [0, 1]);
  const tx = (x: number) => {
    const t =
      scale === 'log'
        ? (Math.log10(x) - Math.log10(xDom[0])) / (Math.log10(xDom[1]) - Math.log10(xDom[0]))
        : (x - xDom[0]) / (xDom[1] - xDom[0]);
    return m.left + t * plotW;
  };
  const ty = (y: number) => m.top + plotH - ((y - yDom[0]) / (yDom[1] - yDom[0])) * plotH;

  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img"${o.className ? ` class="${escapeHtml(o.className)}"` : ''}>`,
  );
  parts.push(`<title>${escapeHtml(o.title)}</title>`);
  parts.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#fff"/>`);
  parts.push(
    `<text x="${fmt(m.left + plotW / 2)}" y="16" text-anchor="middle" class="ttl">${escapeHtml(o.title)}</text>`,
  );
  // Grid and ticks.
  const yt = niceTicks(yDom[0], yDom[1], 5);
  for (const v of yt) {
    const y = fmt(ty(v));
    parts.push(`<line x1="${m.left}" x2="${m.left + plotW}" y1="${y}" y2="${y}" class="grid"/>`);
    parts.push(
      `<text x="${m.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle" class="tick">${escapeHtml(tickLabel(v))}</text>`,
    );
  }
  const xt: Array<[number, string]> =
    scale === 'category'
      ? (o.categories ?? []).map((c, i) => [i, c.length > 14 ? c.slice(0, 13) + '…' : c])
      : (scale === 'log' ? logTicks(xDom[0], xDom[1]) : niceTicks(xDom[0], xDom[1], 5)).map((v) => [v, tickLabel(v)]);
  for (const [v, label] of xt) {
    const x = fmt(tx(v));
    parts.push(`<line x1="${x}" x2="${x}" y1="${m.top}" y2="${m.top + plotH}" class="grid"/>`);
    parts.push(
      `<text x="${x}" y="${m.top + plotH + 16}" text-anchor="middle" class="tick">${escapeHtml(label)}</text>`,
    );
  }
  parts.push(`<rect x="${m.left}" y="${m.top}" width="${plotW}" height="${plotH}" class="frame"/>`);
  parts.push(
    `<text x="${fmt(m.left + plotW / 2)}" y="${m.top + plotH + 36}" text-anchor="middle" class="axis">${escapeHtml(o.xLabel)}</text>`,
  );
  parts.push(
    `<text transform="translate(14 ${fmt(m.top + plotH / 2)}) rotate(-90)" text-anchor="middle" class="axis">${escapeHtml(o.yLabel)}</text>`,
  );
  if (o.diagonal)
    parts.push(
      `<line x1="${fmt(tx(Math.max(xDom[0], yDom[0])))}" y1="${fmt(ty(Math.max(xDom[0], yDom[0])))}" x2="${fmt(tx(Math.min(xDom[1], yDom[1])))}" y2="${fmt(ty(Math.min(xDom[1], yDom[1])))}" class="diag"/>`,
    );

  // Series, clipped to the frame.
  const clip = `clip-${(o.id ?? 'plot').replace(/[^A-Za-z0-9-]/g, '-')}`;
  parts.push(`<clipPath id="${clip}"><rect x="${m.left}" y="${m.top}" width="${plotW}" height="${plotH}"/></clipPath>`);
  parts.push(`<g clip-path="url(#${clip})">`);
  series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length];
    const dash = DASHES[Math.floor(i / PALETTE.length) % DASHES.length];
    const pts = s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y) && (scale !== 'log' || p.x > 0));
    parts.push(`<g class="series" data-series="${i}">`);
    const linePts = s.line === 'mean' ? meanByX(pts) : pts;
    if (s.line && linePts.length > 1) {
      parts.push(
        `<polyline fill="none" stroke="${color}" stroke-width="1.8"${dash ? ` stroke-dasharray="${dash}"` : ''} points="${linePts.map((p) => `${fmt(tx(p.x))},${fmt(ty(p.y))}`).join(' ')}"><title>${escapeHtml(s.label)}</title></polyline>`,
      );
    }
    if (s.markers !== false) {
      for (const p of pts) {
        parts.push(
          `<circle cx="${fmt(tx(p.x))}" cy="${fmt(ty(p.y))}" r="3.5" fill="${color}">${p.title ? `<title>${escapeHtml(p.title)}</title>` : ''}</circle>`,
        );
      }
    }
    parts.push('</g>');
  });
  parts.push('</g>');

  if (showLegend) {
    const lx = m.left + plotW + m.right + 6;
    const clipText = (t: string) => (t.length > LEGEND_CHARS ? t.slice(0, LEGEND_CHARS - 1) + '…' : t);
    if (o.legendTitle)
      parts.push(
        `<text x="${lx}" y="${m.top + 8}" dominant-baseline="middle" class="leg-title"><title>${escapeHtml(o.legendTitle)}</title>${escapeHtml(clipText(o.legendTitle))}</text>`,
      );
    legendItems.forEach((s, k) => {
      const j = k + (o.legendTitle ? 1 : 0);
      const i = series.indexOf(s);
      const color = PALETTE[i % PALETTE.length];
      const dash = DASHES[Math.floor(i / PALETTE.length) % DASHES.length];
      const y = m.top + 8 + j * 16;
      const text = clipText(s.label);
      parts.push(
        `<g class="legend-item"><line x1="${lx}" x2="${lx + 18}" y1="${y}" y2="${y}" stroke="${color}" stroke-width="2.5"${dash ? ` stroke-dasharray="${dash}"` : ''}/>` +
          `<text x="${lx + 24}" y="${y}" dominant-baseline="middle" class="leg"><title>${escapeHtml(s.label)}</title>${escapeHtml(text)}</text></g>`,
      );
    });
  }
  parts.push('</svg>');
  return parts.join('\n');
}
