// Small inline-SVG plotting for the report: axes with readable ticks (linear, log or categorical x), point and
// line series, a legend, and heat maps. Series with the same points stay visible (the later ones dashed over the
// first, in their own colours). Every piece of text goes through escapeHtml, so names and values cannot inject
// markup.

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
  /** Half the height of an error bar drawn through the point (a group's standard deviation). */
  err?: number;
}

export interface PlotSeries {
  label: string;
  points: PlotPoint[];
  /** Join the points in the given order with a line; 'mean': through the mean y at each x (repeats at one x). */
  line?: boolean | 'mean';
  /** Draw a marker at each point. */
  markers?: boolean;
  /** Drawn wider, marked in the legend (the best experiment). */
  emphasis?: boolean;
  /** Tooltip of the line and the legend entry (default: the label). */
  title?: string;
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
  /** x values are whole numbers (epochs): ticks only there. */
  xIntegers?: boolean;
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

interface Frame {
  m: { left: number; right: number; top: number; bottom: number };
  plotW: number;
  plotH: number;
  W: number;
  H: number;
  scale: 'linear' | 'log' | 'category';
  xDom: [number, number];
  yDom: [number, number];
  tx: (x: number) => number;
  ty: (y: number) => number;
  legendItems: PlotSeries[];
  showLegend: boolean;
}

const LEGEND_CHARS = 44;

function xDomain(o: PlotOptions, xs: number[], scale: Frame['scale']): [number, number] {
  if (o.xDomain) return o.xDomain;
  if (scale === 'category') return [-0.5, Math.max(0, (o.categories?.length ?? 1) - 1) + 0.5];
  if (scale === 'log') return [Math.min(...xs) / 1.3, Math.max(...xs) * 1.3];
  return padDomain(xs.length ? [Math.min(...xs), Math.max(...xs)] : [0, 1]);
}

/** Sizes, domains and scales of one plot. */
function frame(series: PlotSeries[], o: PlotOptions): Frame {
  const legendItems = series.filter((s) => s.label !== '');
  const showLegend = legendItems.length > 1 || (legendItems.length === 1 && series.length === 1 && !!o.diagonal);
  const longest = Math.max(
    o.legendTitle?.length ?? 0,
    ...legendItems.map((s) => Math.min(LEGEND_CHARS, s.label.length + (s.emphasis ? 2 : 0))),
  );
  const legendWidth = showLegend ? Math.min(330, 40 + longest * 6.3) : 0;
  const plotW = o.width ?? 360;
  const plotH = o.height ?? 260;
  const m = { left: 58, right: 14, top: 28, bottom: 46 };
  const legendRows = legendItems.length + (o.legendTitle ? 1 : 0);
  const legendH = showLegend ? m.top + legendRows * 16 + 8 : 0;
  const all = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const scale = o.xScale ?? 'linear';
  const xDom = xDomain(
    o,
    all.map((p) => p.x),
    scale,
  );
  const ys = all.flatMap((p) => (p.err !== undefined && Number.isFinite(p.err) ? [p.y - p.err, p.y + p.err] : [p.y]));
  const yDom = o.yDomain ?? padDomain(ys.length ? [Math.min(...ys), Math.max(...ys)] : [0, 1]);
  const tx = (x: number) => {
    const t =
      scale === 'log'
        ? (Math.log10(x) - Math.log10(xDom[0])) / (Math.log10(xDom[1]) - Math.log10(xDom[0]))
        : (x - xDom[0]) / (xDom[1] - xDom[0]);
    return m.left + t * plotW;
  };
  const ty = (y: number) => m.top + plotH - ((y - yDom[0]) / (yDom[1] - yDom[0])) * plotH;
  const W = m.left + plotW + m.right + legendWidth;
  const H = Math.max(m.top + plotH + m.bottom, legendH);
  return { m, plotW, plotH, W, H, scale, xDom, yDom, tx, ty, legendItems, showLegend };
}

/** Title, grid, ticks, frame, axis labels and the optional diagonal. */
function axesSvg(f: Frame, o: PlotOptions): string[] {
  const { m, plotW, plotH, tx, ty, xDom, yDom } = f;
  const parts: string[] = [];
  parts.push(`<title>${escapeHtml(o.title)}</title>`);
  parts.push(`<rect x="0" y="0" width="${f.W}" height="${f.H}" fill="#fff"/>`);
  parts.push(
    `<text x="${fmt(m.left + plotW / 2)}" y="16" text-anchor="middle" class="ttl">${escapeHtml(o.title)}</text>`,
  );
  for (const v of niceTicks(yDom[0], yDom[1], 5)) {
    const y = fmt(ty(v));
    parts.push(`<line x1="${m.left}" x2="${m.left + plotW}" y1="${y}" y2="${y}" class="grid"/>`);
    parts.push(
      `<text x="${m.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle" class="tick">${escapeHtml(tickLabel(v))}</text>`,
    );
  }
  const xt: Array<[number, string]> =
    f.scale === 'category'
      ? (o.categories ?? []).map((c, i) => [i, c.length > 14 ? c.slice(0, 13) + '…' : c])
      : (f.scale === 'log' ? logTicks(xDom[0], xDom[1]) : niceTicks(xDom[0], xDom[1], 5))
          .filter((v) => !o.xIntegers || Number.isInteger(v))
          .map((v) => [v, tickLabel(v)]);
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
  if (o.diagonal) {
    const lo = Math.max(xDom[0], yDom[0]);
    const hi = Math.min(xDom[1], yDom[1]);
    parts.push(`<line x1="${fmt(tx(lo))}" y1="${fmt(ty(lo))}" x2="${fmt(tx(hi))}" y2="${fmt(ty(hi))}" class="diag"/>`);
  }
  return parts;
}

interface SeriesStyle {
  color: string;
  /** stroke-dasharray, '' for solid. */
  dash: string;
  offset: number;
  width: number;
  /** Index of the first series with exactly these points, when this one repeats it. */
  sameAs?: number;
}

/**
 * Colours and dashes. A series whose points repeat an earlier one's would hide behind it: the first of such a
 * group is drawn solid, the k-th of n dashed in slot k of a pattern n dashes long, so every colour shows.
 */
export function seriesStyles(series: PlotSeries[]): SeriesStyle[] {
  const key = (s: PlotSeries) => JSON.stringify(s.points.map((p) => [p.x, p.y]));
  const groups = new Map<string, number[]>();
  series.forEach((s, i) => {
    const k = key(s);
    groups.set(k, [...(groups.get(k) ?? []), i]);
  });
  return series.map((s, i) => {
    const color = PALETTE[i % PALETTE.length];
    const width = s.emphasis ? 3.2 : 1.8;
    const group = s.points.length ? groups.get(key(s))! : [i];
    const k = group.indexOf(i);
    if (group.length < 2 || k === 0) {
      // Beyond the palette, dashes tell series of one colour apart.
      return { color, dash: DASHES[Math.floor(i / PALETTE.length) % DASHES.length], offset: 0, width };
    }
    const d = 6;
    return { color, dash: `${d} ${d * (group.length - 1)}`, offset: -d * k, width, sameAs: group[0] };
  });
}

/** The series, clipped to the frame. */
function seriesSvg(series: PlotSeries[], styles: SeriesStyle[], f: Frame, id: string | undefined): string[] {
  const { m, plotW, plotH, tx, ty } = f;
  const clip = `clip-${(id ?? 'plot').replace(/[^A-Za-z0-9-]/g, '-')}`;
  const parts = [
    `<clipPath id="${clip}"><rect x="${m.left}" y="${m.top}" width="${plotW}" height="${plotH}"/></clipPath>`,
    `<g clip-path="url(#${clip})">`,
  ];
  series.forEach((s, i) => {
    const st = styles[i];
    const pts = s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y) && (f.scale !== 'log' || p.x > 0));
    const same = st.sameAs !== undefined ? ` data-same-as="${st.sameAs}"` : '';
    parts.push(`<g class="series${s.emphasis ? ' emphasis' : ''}" data-series="${i}"${same}>`);
    const linePts = s.line === 'mean' ? meanByX(pts) : pts;
    const dash = st.dash ? ` stroke-dasharray="${st.dash}"${st.offset ? ` stroke-dashoffset="${st.offset}"` : ''}` : '';
    if (s.line && linePts.length > 1) {
      parts.push(
        `<polyline fill="none" stroke="${st.color}" stroke-width="${st.width}"${dash} points="${linePts.map((p) => `${fmt(tx(p.x))},${fmt(ty(p.y))}`).join(' ')}"><title>${escapeHtml(s.title ?? s.label)}</title></polyline>`,
      );
    }
    for (const p of pts) {
      if (p.err === undefined || !Number.isFinite(p.err)) continue;
      // An error bar: a vertical line over y ± err with short caps.
      const [x, lo, hi] = [fmt(tx(p.x)), fmt(ty(p.y - p.err)), fmt(ty(p.y + p.err))];
      const [l, r] = [fmt(tx(p.x) - 4), fmt(tx(p.x) + 4)];
      parts.push(
        `<path class="errorbar" fill="none" stroke="${st.color}" stroke-width="1.2" d="M${x} ${lo}V${hi}M${l} ${lo}H${r}M${l} ${hi}H${r}">${p.title ? `<title>${escapeHtml(p.title)}</title>` : ''}</path>`,
      );
    }
    if (s.markers !== false) {
      // A repeated series' markers sit inside the first one's, smaller, so both colours show.
      const r = st.sameAs !== undefined ? 2 : s.emphasis ? 4.5 : 3.5;
      for (const p of pts) {
        parts.push(
          `<circle cx="${fmt(tx(p.x))}" cy="${fmt(ty(p.y))}" r="${r}" fill="${st.color}">${p.title ? `<title>${escapeHtml(p.title)}</title>` : ''}</circle>`,
        );
      }
    }
    parts.push('</g>');
  });
  parts.push('</g>');
  return parts;
}

function legendSvg(series: PlotSeries[], styles: SeriesStyle[], f: Frame, o: PlotOptions): string[] {
  if (!f.showLegend) return [];
  const parts: string[] = [];
  const lx = f.m.left + f.plotW + f.m.right + 6;
  const clipText = (t: string) => (t.length > LEGEND_CHARS ? t.slice(0, LEGEND_CHARS - 1) + '…' : t);
  if (o.legendTitle)
    parts.push(
      `<text x="${lx}" y="${f.m.top + 8}" dominant-baseline="middle" class="leg-title"><title>${escapeHtml(o.legendTitle)}</title>${escapeHtml(clipText(o.legendTitle))}</text>`,
    );
  f.legendItems.forEach((s, k) => {
    const j = k + (o.legendTitle ? 1 : 0);
    const i = series.indexOf(s);
    const st = styles[i];
    const y = f.m.top + 8 + j * 16;
    // A repeat's sparse dashes would not show in a short legend line: solid there, the tooltip says why.
    const dash = st.dash && st.sameAs === undefined ? ` stroke-dasharray="${st.dash}"` : '';
    const same =
      st.sameAs !== undefined ? ` (the same points as ${series[st.sameAs].label}: drawn dashed over it)` : '';
    const text = clipText((s.emphasis ? '★ ' : '') + s.label);
    parts.push(
      `<g class="legend-item${s.emphasis ? ' emphasis' : ''}${st.sameAs !== undefined ? ' same' : ''}"><line x1="${lx}" x2="${lx + 18}" y1="${y}" y2="${y}" stroke="${st.color}" stroke-width="${Math.max(2.5, st.width)}"${dash}/>` +
        `<text x="${lx + 24}" y="${y}" dominant-baseline="middle" class="leg"><title>${escapeHtml((s.title ?? s.label) + same)}</title>${escapeHtml(text)}</text></g>`,
    );
  });
  return parts;
}

/** One plot as an <svg> element string: axes, ticks, grid, series, legend (when more than one labelled series). */
export function plotSvg(series: PlotSeries[], o: PlotOptions): string {
  const f = frame(series, o);
  const styles = seriesStyles(series);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${f.W}" height="${f.H}" viewBox="0 0 ${f.W} ${f.H}" role="img"${o.className ? ` class="${escapeHtml(o.className)}"` : ''}>`,
    ...axesSvg(f, o),
    ...seriesSvg(series, styles, f, o.id),
    ...legendSvg(series, styles, f, o),
    '</svg>',
  ].join('\n');
}

export interface HeatCell {
  /** Column and row indices into the categories. */
  x: number;
  y: number;
  value: number;
  title?: string;
  best?: boolean;
}

export interface HeatmapOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  xCategories: string[];
  yCategories: string[];
  /** Which way is better: the better end of the scale is the bright one. */
  goal?: 'max' | 'min';
  /** Unique within the page (names the gradient). */
  id?: string;
}

// Viridis at five stops: dark (worse) to bright (better), readable in grey too.
const VIRIDIS = ['#440154', '#3b528b', '#21918c', '#5ec962', '#fde725'];

function mix(a: string, b: string, t: number): string {
  const c = (h: string, i: number) => parseInt(h.slice(1 + 2 * i, 3 + 2 * i), 16);
  return (
    '#' +
    [0, 1, 2]
      .map((i) =>
        Math.round(c(a, i) + (c(b, i) - c(a, i)) * t)
          .toString(16)
          .padStart(2, '0'),
      )
      .join('')
  );
}

/** A colour for t in [0, 1] along VIRIDIS. */
export function heatColor(t: number): string {
  const u = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(u));
  return mix(VIRIDIS[i], VIRIDIS[i + 1], u - i);
}

/** A grid of coloured cells (x categories by y categories) with the value in each, and a colour bar. */
export function heatmapSvg(cells: HeatCell[], o: HeatmapOptions): string {
  const cw = 64;
  const ch = 32;
  const m = { left: 96, top: 30, bottom: 48, right: 86 };
  const W = m.left + cw * o.xCategories.length + m.right;
  const H = m.top + ch * o.yCategories.length + m.bottom;
  const values = cells.map((c) => c.value);
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const t = (v: number) => {
    const u = hi > lo ? (v - lo) / (hi - lo) : 0.5;
    return o.goal === 'min' ? 1 - u : u;
  };
  const grad = `grad-${(o.id ?? 'heat').replace(/[^A-Za-z0-9-]/g, '-')}`;
  const clip = (s: string) => (s.length > 12 ? s.slice(0, 11) + '…' : s);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" class="heatmap">`,
    `<title>${escapeHtml(o.title)}</title>`,
    `<rect x="0" y="0" width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${fmt(W / 2)}" y="16" text-anchor="middle" class="ttl">${escapeHtml(o.title)}</text>`,
  ];
  o.xCategories.forEach((c, i) =>
    parts.push(
      `<text x="${m.left + cw * i + cw / 2}" y="${m.top + ch * o.yCategories.length + 16}" text-anchor="middle" class="tick"><title>${escapeHtml(c)}</title>${escapeHtml(clip(c))}</text>`,
    ),
  );
  o.yCategories.forEach((c, j) =>
    parts.push(
      `<text x="${m.left - 6}" y="${m.top + ch * j + ch / 2}" text-anchor="end" dominant-baseline="middle" class="tick"><title>${escapeHtml(c)}</title>${escapeHtml(clip(c))}</text>`,
    ),
  );
  parts.push(
    `<text x="${fmt(m.left + (cw * o.xCategories.length) / 2)}" y="${H - 10}" text-anchor="middle" class="axis">${escapeHtml(o.xLabel)}</text>`,
    `<text transform="translate(14 ${fmt(m.top + (ch * o.yCategories.length) / 2)}) rotate(-90)" text-anchor="middle" class="axis">${escapeHtml(o.yLabel)}</text>`,
  );
  for (const c of cells) {
    const x = m.left + cw * c.x;
    const y = m.top + ch * c.y;
    const fill = heatColor(t(c.value));
    const ink = t(c.value) > 0.6 ? '#000' : '#fff';
    parts.push(
      `<g class="cell${c.best ? ' best' : ''}"><rect x="${x}" y="${y}" width="${cw}" height="${ch}" fill="${fill}"${c.best ? ' stroke="#d62728" stroke-width="3"' : ' stroke="#fff"'}>${c.title ? `<title>${escapeHtml(c.title)}</title>` : ''}</rect>` +
        `<text x="${x + cw / 2}" y="${y + ch / 2}" text-anchor="middle" dominant-baseline="middle" fill="${ink}" style="fill:${ink}">${escapeHtml(tickLabel(c.value))}</text></g>`,
    );
  }
  // Colour bar: better at the top.
  const bx = W - m.right + 16;
  const bh = Math.max(ch * o.yCategories.length, 60);
  const [top, bottom] = o.goal === 'min' ? [lo, hi] : [hi, lo];
  parts.push(
    `<defs><linearGradient id="${grad}" x1="0" y1="1" x2="0" y2="0">${VIRIDIS.map((c, i) => `<stop offset="${i / (VIRIDIS.length - 1)}" stop-color="${c}"/>`).join('')}</linearGradient></defs>`,
    `<rect x="${bx}" y="${m.top}" width="12" height="${bh}" fill="url(#${grad})"/>`,
    `<text x="${bx + 16}" y="${m.top + 6}" class="tick">${escapeHtml(tickLabel(top))}</text>`,
    `<text x="${bx + 16}" y="${m.top + bh}" class="tick">${escapeHtml(tickLabel(bottom))}</text>`,
    '</svg>',
  );
  return parts.join('\n');
}
