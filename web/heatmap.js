// One heatmap: a matrix drawn on a <canvas>, with token or index labels, a
// cell cursor reachable by mouse and keyboard, and a readout line giving the
// exact value under the cursor.
//
// Why canvas: at L = 32, E = 64, h = 8 the page shows ~17 000 cells; as SVG or
// DOM nodes that is slow to build on every keystroke. Here the cells are
// written as pixels into a cols × rows image and scaled up with smoothing off
// (one drawImage per heatmap), so a whole re-render stays within a few ms.
// The cursor is a positioned <div> over the canvas, so moving it never
// redraws the canvas.
import { f32, short } from './format.js';

const FONT_PX = 11;
const FONT = `${FONT_PX}px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif`;
const BAND_H = 16;

// Colour scales as 256-entry RGB lookup tables. Weights (≥ 0) use a white → blue
// sequential scale; signed values a blue ← white → red diverging one, so 0 is
// always white and the sign is readable at a glance.
function makeLut(stops) {
  const lut = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const t = (i / 255) * (stops.length - 1);
    const k = Math.min(stops.length - 2, Math.floor(t));
    const f = t - k;
    for (let ch = 0; ch < 3; ch++) lut[i * 3 + ch] = stops[k][ch] + (stops[k + 1][ch] - stops[k][ch]) * f;
  }
  return lut;
}
const SEQ_STOPS = [[255, 255, 255], [222, 235, 247], [158, 202, 225], [66, 146, 198], [8, 81, 156], [8, 38, 94]];
const DIV_STOPS = [[24, 84, 160], [103, 169, 207], [209, 229, 240], [250, 250, 250], [253, 219, 199], [239, 138, 98], [165, 15, 35]];
const SEQ = makeLut(SEQ_STOPS);
const DIV = makeLut(DIV_STOPS);
const NAN_RGB = [150, 150, 150];

/** CSS gradient of a scale, for the legends. */
export function scaleGradient(kind) {
  const stops = kind === 'seq' ? SEQ_STOPS : DIV_STOPS;
  return `linear-gradient(to right, ${stops.map((s) => `rgb(${s.join(',')})`).join(', ')})`;
}

/** Fills `el` with a colour legend: low end, gradient bar, high end. */
export function fillLegend(el, scale) {
  const lo = document.createElement('span');
  lo.textContent = scale.kind === 'seq' || !(scale.max > 0) ? '0' : `−${short(scale.max)}`;
  const bar = document.createElement('span');
  bar.className = 'hm-bar';
  bar.style.background = scaleGradient(scale.kind);
  const hi = document.createElement('span');
  hi.textContent = scale.kind === 'seq' || !(scale.max > 0) ? short(scale.max) : `+${short(scale.max)}`;
  el.replaceChildren(lo, bar, hi);
}

let measurer = null;
function measureContext() {
  if (measurer == null) {
    measurer = document.createElement('canvas').getContext('2d');
    measurer.font = FONT;
  }
  return measurer;
}

/** Width in px the given labels need (capped), so heatmaps in a row can share it. */
export function labelWidth(labels, max = 84) {
  const ctx = measureContext();
  let w = 0;
  for (const l of labels) w = Math.max(w, ctx.measureText(l).width);
  return Math.min(max, Math.ceil(w) + 8);
}

function fitText(ctx, text, width) {
  if (ctx.measureText(text).width <= width) return text;
  let s = text;
  while (s.length > 1 && ctx.measureText(`${s}…`).width > width) s = s.slice(0, -1);
  return `${s}…`;
}

let hatch = null;
function hatchPattern(ctx) {
  if (hatch == null) {
    const c = document.createElement('canvas');
    c.width = 6; c.height = 6;
    const g = c.getContext('2d');
    g.strokeStyle = 'rgba(180, 35, 24, 0.55)';
    g.lineWidth = 1.2;
    g.beginPath(); g.moveTo(-1, 7); g.lineTo(7, -1); g.stroke();
    hatch = c;
  }
  return ctx.createPattern(hatch, 'repeat');
}

/** A readout line (exact value under the cursor), to give to one or more heatmaps. */
export function makeReadout(id) {
  const p = document.createElement('p');
  p.className = 'hm-readout';
  p.id = id;
  p.setAttribute('aria-live', 'polite');
  p.textContent = '\u00a0';
  p.sharers = new Set();  // the heatmaps writing to it
  p.owner = null;         // the one that wrote last
  return p;
}

let offscreen = null;
let uid = 0;

export class Heatmap {
  /**
   * @param {object} o
   * @param {string} o.kind  data-kind of the figure (tests find heatmaps by it)
   * @param {(col:number)=>void} [o.onColumnClick]  clicking a column label (used to mask keys)
   */
  constructor({ kind, onColumnClick = null, extraClass = '', readout = null }) {
    this.id = `hm${++uid}`;
    this.onColumnClick = onColumnClick;
    this.spec = null;
    this.cursor = { r: 0, c: 0 };
    this.hover = null;

    const fig = document.createElement('figure');
    fig.className = `hm ${extraClass}`.trim();
    fig.dataset.kind = kind;
    const cap = document.createElement('figcaption');
    this.titleEl = document.createElement('span');
    this.titleEl.className = 'hm-title';
    this.legendEl = document.createElement('span');
    this.legendEl.className = 'hm-legend';
    cap.append(this.titleEl, this.legendEl);
    const scroll = document.createElement('div');
    scroll.className = 'hm-scroll';
    const stage = document.createElement('div');
    stage.className = 'hm-stage';
    this.canvas = document.createElement('canvas');
    this.canvas.tabIndex = 0;
    // An interactive widget with its own arrow-key handling.
    this.canvas.setAttribute('role', 'application');
    this.canvas.setAttribute('aria-roledescription', 'heatmap');
    this.cursorEl = document.createElement('div');
    this.cursorEl.className = 'hm-cursor';
    this.cursorEl.hidden = true;
    stage.append(this.canvas, this.cursorEl);
    scroll.append(stage);
    // The readout line: the figure's own, or one shared by the maps of a head
    // card (so a narrow Zᵢ map still gets the card's full width for its text).
    this.readout = readout ?? makeReadout(`${this.id}-readout`);
    this.readout.sharers.add(this);
    this.canvas.setAttribute('aria-describedby', this.readout.id);
    fig.dataset.readout = this.readout.id;
    fig.append(cap, scroll);
    if (!readout) fig.append(this.readout);
    this.el = fig;

    this.canvas.addEventListener('mousemove', (e) => this.#onMove(e));
    this.canvas.addEventListener('mouseleave', () => { this.hover = null; this.#showCursor(); });
    this.canvas.addEventListener('focus', () => this.#showCursor());
    this.canvas.addEventListener('blur', () => this.#showCursor());
    this.canvas.addEventListener('keydown', (e) => this.#onKey(e));
    this.canvas.addEventListener('click', (e) => this.#onClick(e));
  }

  /**
   * spec: { data, rows, cols, cell, title, ariaLabel,
   *   rowLabels|null, rowLabelWidth, rowDim (bool[]: greyed rows, e.g. padding),
   *   colLabels, colMode: 'text'|'index', colHeaderHeight, colMasked (bool[]),
   *   bands: [{start, end, label}] | null, scale: {kind: 'seq'|'div', max},
   *   rowName, colName }
   */
  update(spec) {
    this.spec = spec;
    this.titleEl.textContent = spec.title;
    this.titleEl.title = spec.title;
    this.legendEl.hidden = spec.legend === false;  // e.g. the heads share one legend
    if (spec.legend !== false) fillLegend(this.legendEl, spec.scale);
    this.canvas.setAttribute('aria-label', `${spec.ariaLabel}. Arrow keys move the cell cursor; the value is read out below.`);
    this.cursor.r = Math.min(this.cursor.r, Math.max(0, spec.rows - 1));
    this.cursor.c = Math.min(this.cursor.c, Math.max(0, spec.cols - 1));
    if (this.hover && (this.hover.r >= spec.rows || this.hover.c >= spec.cols)) this.hover = null;
    this.#draw();
    this.#showCursor();
  }

  /** The value at (r, c) of the matrix shown. */
  valueAt(r, c) {
    return this.spec.data[r * this.spec.cols + c];
  }

  #geometry() {
    const s = this.spec;
    const ox = s.rowLabels ? s.rowLabelWidth : 0;
    const bandH = s.bands ? BAND_H : 0;
    const oy = bandH + s.colHeaderHeight;
    return { ox, oy, bandH, W: ox + s.cols * s.cell + 1, H: oy + s.rows * s.cell + 1 };
  }

  #draw() {
    const s = this.spec;
    const { ox, oy, bandH, W, H } = this.#geometry();
    const dpr = window.devicePixelRatio || 1;
    const cv = this.canvas;
    const pw = Math.round(W * dpr), ph = Math.round(H * dpr);
    if (cv.width !== pw || cv.height !== ph) { cv.width = pw; cv.height = ph; }
    cv.style.width = `${W}px`;
    cv.style.height = `${H}px`;
    Object.assign(cv.dataset, { rows: s.rows, cols: s.cols, cell: s.cell, ox, oy });
    const ctx = cv.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    const cw = s.cols * s.cell, ch = s.rows * s.cell;

    // Cells: one pixel per value, scaled up without smoothing.
    if (s.rows > 0 && s.cols > 0) {
      if (offscreen == null) offscreen = document.createElement('canvas');
      offscreen.width = s.cols;
      offscreen.height = s.rows;
      const octx = offscreen.getContext('2d');
      const img = octx.createImageData(s.cols, s.rows);
      const px = img.data;
      const lut = s.scale.kind === 'seq' ? SEQ : DIV;
      const inv = s.scale.max > 0 ? 1 / s.scale.max : 0;
      const n = s.rows * s.cols;
      for (let i = 0; i < n; i++) {
        const v = s.data[i];
        let r, g, b;
        if (Number.isNaN(v)) {
          [r, g, b] = NAN_RGB;
        } else {
          const t = s.scale.kind === 'seq' ? v * inv : 0.5 + 0.5 * v * inv;
          const k = 3 * Math.max(0, Math.min(255, Math.round(t * 255)));
          r = lut[k]; g = lut[k + 1]; b = lut[k + 2];
        }
        px[i * 4] = r; px[i * 4 + 1] = g; px[i * 4 + 2] = b; px[i * 4 + 3] = 255;
      }
      octx.putImageData(img, 0, 0);
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(offscreen, 0, 0, s.cols, s.rows, ox, oy, cw, ch);
    }

    // Thin white grid lines when cells are big enough to tell apart.
    if (s.cell >= 8) {
      ctx.strokeStyle = 'rgba(255,255,255,0.7)';
      ctx.lineWidth = 1;
      ctx.beginPath();
      for (let c = 1; c < s.cols; c++) { const x = ox + c * s.cell + 0.5; ctx.moveTo(x, oy); ctx.lineTo(x, oy + ch); }
      for (let r = 1; r < s.rows; r++) { const y = oy + r * s.cell + 0.5; ctx.moveTo(ox, y); ctx.lineTo(ox + cw, y); }
      ctx.stroke();
    }
    ctx.strokeStyle = '#c9ced6';
    ctx.strokeRect(ox + 0.5, oy + 0.5, cw, ch);

    // Masked key columns: hatched over the cells (their labels are struck through in red).
    if (s.colMasked) {
      ctx.fillStyle = hatchPattern(ctx);
      for (let c = 0; c < s.cols; c++)
        if (s.colMasked[c]) ctx.fillRect(ox + c * s.cell, oy, s.cell, ch);
    }

    // Head bands (the concatenation): separators and Z₁ … Zₕ labels.
    ctx.font = FONT;
    if (s.bands) {
      s.bands.forEach((band, i) => {
        const x0 = ox + band.start * s.cell, x1 = ox + band.end * s.cell;
        ctx.fillStyle = i % 2 === 0 ? '#e8eefb' : '#f6e9f3';
        ctx.fillRect(x0, 0, x1 - x0, bandH - 2);
        ctx.fillStyle = '#1f2937';
        ctx.textAlign = 'center';
        ctx.textBaseline = 'middle';
        const label = fitText(ctx, band.label, Math.max(4, x1 - x0 - 2));
        ctx.fillText(label, (x0 + x1) / 2, (bandH - 2) / 2 + 0.5);
        if (i > 0) {  // a separator through the band row and the cells, not the index labels
          ctx.fillStyle = '#111827';
          ctx.fillRect(x0 - 1, 0, 2, bandH);
          ctx.fillRect(x0 - 1, oy, 2, ch);
        }
      });
    }

    // Row labels (every k-th when rows are too thin for text).
    if (s.rowLabels) {
      const step = Math.max(1, Math.ceil((FONT_PX + 1) / s.cell));
      ctx.textAlign = 'right';
      ctx.textBaseline = 'middle';
      for (let r = 0; r < s.rows; r += step) {
        ctx.fillStyle = s.rowDim && s.rowDim[r] ? '#9aa1ab' : '#1f2937';
        ctx.fillText(fitText(ctx, s.rowLabels[r], ox - 6), ox - 4, oy + r * s.cell + s.cell / 2 + 0.5);
      }
    }

    // Column labels: tokens run upwards; indices sit horizontally.
    if (s.colHeaderHeight > 0) {
      if (s.colMode === 'text') {
        const step = Math.max(1, Math.ceil((FONT_PX + 1) / s.cell));
        ctx.textAlign = 'left';
        ctx.textBaseline = 'middle';
        for (let c = 0; c < s.cols; c += step) {
          const masked = s.colMasked && s.colMasked[c];
          ctx.fillStyle = masked ? '#b42318' : '#1f2937';
          const text = fitText(ctx, s.colLabels[c], s.colHeaderHeight - 6);
          ctx.save();
          ctx.translate(ox + c * s.cell + s.cell / 2 + 0.5, oy - 4);
          ctx.rotate(-Math.PI / 2);
          ctx.fillText(text, 0, 0);
          if (masked) ctx.fillRect(0, -0.5, ctx.measureText(text).width, 1.2);  // struck through
          ctx.restore();
        }
      } else {
        const widest = measureContext().measureText(String(s.cols - 1)).width + 4;
        // Label every 1st, 2nd, 4th, 5th, 8th … column: round steps line up with the head bands.
        const need = Math.ceil(widest / s.cell);
        const step = [1, 2, 4, 5, 8, 10, 16, 20, 32, 50, 64, 100, 128, 256].find((k) => k >= need) ?? need;
        ctx.textAlign = 'center';
        ctx.textBaseline = 'bottom';
        ctx.fillStyle = '#4b5563';
        for (let c = 0; c < s.cols; c += step)
          ctx.fillText(s.colLabels[c], ox + c * s.cell + s.cell / 2, oy - 2);
      }
    }
  }

  #cellAt(e) {
    const { ox, oy } = this.#geometry();
    const rect = this.canvas.getBoundingClientRect();
    const x = e.clientX - rect.left - ox, y = e.clientY - rect.top - oy;
    const s = this.spec;
    return { c: Math.floor(x / s.cell), r: Math.floor(y / s.cell), x, y };
  }

  #onMove(e) {
    if (!this.spec) return;
    const { r, c, y } = this.#cellAt(e);
    const s = this.spec;
    const headerCol = y < 0 && c >= 0 && c < s.cols && this.onColumnClick && s.colMode === 'text';
    this.canvas.style.cursor = headerCol ? 'pointer' : 'default';
    this.hover = r >= 0 && c >= 0 && r < s.rows && c < s.cols ? { r, c } : null;
    this.#showCursor();
  }

  #onClick(e) {
    if (!this.spec || !this.onColumnClick || this.spec.colMode !== 'text') return;
    const { c, y } = this.#cellAt(e);
    if (y < 0 && c >= 0 && c < this.spec.cols) this.onColumnClick(c);
  }

  #onKey(e) {
    const s = this.spec;
    if (!s || s.rows === 0 || s.cols === 0) return;
    const cur = this.cursor;
    const moves = {
      ArrowLeft: () => { cur.c = Math.max(0, cur.c - 1); },
      ArrowRight: () => { cur.c = Math.min(s.cols - 1, cur.c + 1); },
      ArrowUp: () => { cur.r = Math.max(0, cur.r - 1); },
      ArrowDown: () => { cur.r = Math.min(s.rows - 1, cur.r + 1); },
      Home: () => { cur.c = 0; },
      End: () => { cur.c = s.cols - 1; },
      PageUp: () => { cur.r = 0; },
      PageDown: () => { cur.r = s.rows - 1; },
    };
    if (moves[e.key]) {
      moves[e.key]();
      e.preventDefault();
      this.hover = null;
      this.#showCursor();
    } else if ((e.key === 'Enter' || e.key === ' ') && this.onColumnClick && s.colMode === 'text') {
      // The keyboard twin of clicking a column label.
      e.preventDefault();
      this.onColumnClick(cur.c);
    }
  }

  // Shows the hovered cell, else the keyboard cursor while focused, else nothing.
  #showCursor() {
    const s = this.spec;
    if (!s) return;
    const focused = document.activeElement === this.canvas;
    const at = this.hover ?? (focused && s.rows > 0 && s.cols > 0 ? this.cursor : null);
    if (at == null) {
      this.cursorEl.hidden = true;
      // A shared readout is cleared only by the map that wrote it last.
      if (this.readout.owner === this || this.readout.owner == null) {
        this.readout.owner = null;
        this.readout.textContent = '\u00a0';
        this.readout.title = '';
        for (const k of ['row', 'col', 'value']) delete this.readout.dataset[k];
        // A sibling map that still has keyboard focus takes the line back.
        for (const other of this.readout.sharers)
          if (other !== this && document.activeElement === other.canvas) other.#showCursor();
      }
      return;
    }
    this.readout.owner = this;
    const { ox, oy } = this.#geometry();
    Object.assign(this.cursorEl.style, {
      left: `${ox + at.c * s.cell - 1}px`, top: `${oy + at.r * s.cell - 1}px`,
      width: `${s.cell + 2}px`, height: `${s.cell + 2}px`,
    });
    this.cursorEl.hidden = false;
    const v = this.valueAt(at.r, at.c);
    const text = f32(v);
    const rowL = s.rowLabels ? s.rowLabels[at.r] : s.rowNames?.[at.r] ?? String(at.r);
    const colL = s.colLabels[at.c];
    let colPart = s.colMode === 'text' ? `${s.colName} ${at.c} “${colL}”` : `${s.colName} ${at.c}`;
    const band = s.bands?.find((bd) => at.c >= bd.start && at.c < bd.end);
    if (band) colPart += ` (${band.label} dim ${at.c - band.start})`;
    this.readout.textContent = `${s.rowName} ${at.r} “${rowL}” · ${colPart} = ${text}`;
    this.readout.title = this.readout.textContent;
    Object.assign(this.readout.dataset, { row: at.r, col: at.c, value: text });
  }
}
