// bench/plot.svg: median time against sequence length L (128, 512, 2048 at
// E = 512, H = 8, B = 1), one line per peer, log-log. Hand-written SVG, no
// dependencies. Solid lines: 1 thread; dashed: 2 threads.
import { SWEEP, byId } from './shapes.js';
import { indexCells } from './targets.js';

const COLORS = {
  'mha-wasm': '#d62728', 'mha-wasm-simd128': '#e377c2', 'ort-attention': '#1f77b4', 'ort-mha': '#17becf', 'ort-basic': '#9467bd',
  tfjs: '#ff7f0e', 'plain-js': '#7f7f7f', native: '#2ca02c',
};
const W = 760, H = 460;
const M = { left: 70, right: 200, top: 40, bottom: 55 };
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;');

export function plotSvg(results) {
  const cellAt = indexCells(results.runs);
  const Ls = SWEEP.map((id) => byId(id).Lq);
  const series = [];
  for (const threads of [1, 2]) {
    for (const id of Object.keys(COLORS)) {
      const points = [];
      let label = null;
      for (const shapeId of SWEEP) {
        let ms = null;
        let name = null;
        if (id === 'native') {
          if (results.native?.ok) ms = results.native.results[threads]?.[shapeId]?.medianMs ?? null;
          name = 'native C++';
        } else {
          const c = cellAt(threads, shapeId, id);
          if (c && c.status === 'ok') ms = c.medianMs;
          name = c?.name;
        }
        if (ms != null) points.push([byId(shapeId).Lq, ms]);
        label ??= name;
      }
      if (points.length) series.push({ id, threads, name: label ?? id, points });
    }
  }

  const all = series.flatMap((s) => s.points.map((p) => p[1]));
  const yLo = Math.pow(10, Math.floor(Math.log10(Math.min(...all))));
  const yHi = Math.pow(10, Math.ceil(Math.log10(Math.max(...all))));
  const xLo = 100, xHi = 3000;
  const px = (L) => M.left + ((Math.log10(L) - Math.log10(xLo)) / (Math.log10(xHi) - Math.log10(xLo))) * (W - M.left - M.right);
  const py = (ms) => H - M.bottom - ((Math.log10(ms) - Math.log10(yLo)) / (Math.log10(yHi) - Math.log10(yLo))) * (H - M.top - M.bottom);

  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${M.left}" y="22" font-size="14" font-weight="bold">Median time per forward pass vs L (B = 1, E = 512, H = 8, self-attention)</text>`);
  // Grid: decades and 2x/5x on y; the measured lengths on x.
  for (let d = yLo; d <= yHi; d *= 10) {
    for (const m of [1, 2, 5]) {
      const v = d * m;
      if (v > yHi) break;
      const y = py(v).toFixed(1);
      out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${y}" y2="${y}" stroke="${m === 1 ? '#ccc' : '#eee'}"/>`);
      if (m === 1 || (yHi / yLo <= 1e3)) out.push(`<text x="${M.left - 6}" y="${(+y + 4).toFixed(1)}" text-anchor="end" fill="#333">${v >= 1000 ? `${v / 1000} s` : `${v} ms`}</text>`);
    }
  }
  for (const L of Ls) {
    const x = px(L).toFixed(1);
    out.push(`<line x1="${x}" x2="${x}" y1="${M.top}" y2="${H - M.bottom}" stroke="#ddd"/>`);
    out.push(`<text x="${x}" y="${H - M.bottom + 18}" text-anchor="middle" fill="#333">${L}</text>`);
  }
  out.push(`<rect x="${M.left}" y="${M.top}" width="${W - M.left - M.right}" height="${H - M.top - M.bottom}" fill="none" stroke="#444"/>`);
  out.push(`<text x="${(M.left + W - M.right) / 2}" y="${H - 12}" text-anchor="middle">sequence length L (log scale)</text>`);
  out.push(`<text transform="translate(16 ${(M.top + H - M.bottom) / 2}) rotate(-90)" text-anchor="middle">median ms per call (log scale)</text>`);

  const dashOf = (s) => (s.threads > 1 ? ' stroke-dasharray="6 4"' : '');
  const widthOf = (s) => (s.id === 'mha-wasm' ? 3 : 2);
  // Lines drawn last-to-first, so mha-wasm's lie on top where they overlap.
  for (const s of [...series].reverse()) {
    const color = COLORS[s.id];
    const d = s.points.map((p, j) => `${j ? 'L' : 'M'}${px(p[0]).toFixed(1)} ${py(p[1]).toFixed(1)}`).join(' ');
    out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="${widthOf(s)}"${dashOf(s)}/>`);
    for (const p of s.points) out.push(`<circle cx="${px(p[0]).toFixed(1)}" cy="${py(p[1]).toFixed(1)}" r="3.5" fill="${color}"/>`);
  }
  series.forEach((s, i) => {
    const color = COLORS[s.id];
    const dash = dashOf(s);
    const ly = M.top + 10 + i * 20;
    const lx = W - M.right + 16;
    out.push(`<line x1="${lx}" x2="${lx + 26}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="${widthOf(s)}"${dash}/>`);
    out.push(`<text x="${lx + 32}" y="${ly + 4}">${esc(s.name)}, ${s.threads} thread${s.threads > 1 ? 's' : ''}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
