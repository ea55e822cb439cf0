// Drawing the last good run: the input X and its key tokens, the shape walk,
// one card per head (weights | Zᵢ) and the average, the concatenation and
// the output. Every number drawn is an array the package returned (or the
// page's own input); nothing here computes attention.
import { labelWidth, fillLegend } from './heatmap.js';
import { renderWalk, sub } from './walk.js';
import { PAD } from './embeddings.js';
import { heatmap, cardReadout, card, dropHeadsFrom } from './views.js';
import { $, radio } from './dom.js';
import { rankHeads } from './entropy.js';
import { visibleKeys } from './mask_preview.js';
import { renderRanking, renderCompare } from './head_compare.js';

const clamp = (v, lo, hi) => Math.max(lo, Math.min(hi, v));
const index = (n) => Array.from({ length: n }, (_, i) => String(i));

function maxAbs(data, from = 0, to = data.length) {
  let m = 0;
  for (let i = from; i < to; i++) { const a = Math.abs(data[i]); if (a > m) m = a; }
  return m;
}
function maxOf(data, from = 0, to = data.length) {
  let m = 0;
  for (let i = from; i < to; i++) if (data[i] > m) m = data[i];
  return m;
}

function renderBatchSelect(input, selected) {
  const sel = $('batch');
  const names = input.labels.map((t, b) => `${b + 1}: ${t.filter((x) => x !== PAD).slice(0, 5).join(' ')}${t.length > 5 ? ' …' : ''}`);
  const want = names.join('\n');
  if (sel.dataset.names !== want) {
    sel.replaceChildren(...names.map((n, b) => new Option(n, String(b))));
    sel.dataset.names = want;
  }
  sel.value = String(selected);
  sel.disabled = input.B < 2;
}

function renderKeys(input, b, onToggleMask) {
  const box = $('keys');
  const { Lk, keyLabels, keyPadding, mask } = input;
  const buttons = [];
  for (let j = 0; j < Lk; j++) {
    const pad = keyPadding[b * Lk + j] === 1;
    const on = mask[b * Lk + j] === 1;
    const btn = document.createElement('button');
    btn.type = 'button';
    btn.className = `tok${pad ? ' pad' : on ? ' masked' : ''}`;
    btn.textContent = keyLabels[b][j];
    btn.dataset.index = String(j);
    btn.setAttribute('aria-pressed', on ? 'true' : 'false');
    btn.title = pad ? 'padding: always masked' : on ? 'masked as a key: click to unmask' : 'click to mask this key';
    if (pad) btn.disabled = true;
    else btn.addEventListener('click', () => onToggleMask(b, j));
    buttons.push(btn);
  }
  // Keep keyboard focus on the same token across the re-render.
  const focused = box.contains(document.activeElement) ? document.activeElement.dataset.index : null;
  box.replaceChildren(...buttons);
  if (focused != null) box.querySelector(`[data-index="${focused}"]`)?.focus();
  $('keys-note').textContent = `${input.cross ? 'Keys (the key/value text) of' : 'Keys of'} this sequence: click a token to mask it as a key (no query may attend to it); click again to unmask.`;
}

// What every map of sequence b shares: row and column labels, masked columns, sizes.
function frameOf(run, b, width, sideWidth) {
  const { p, input } = run;
  const { L, Lk, S } = input;
  const rowLabels = input.labels[b];
  const rowW = labelWidth(rowLabels);
  const colLabels = [...input.keyLabels[b]];
  if (p.addBiasKV) colLabels.push('⟨bias_k⟩');
  if (p.addZeroAttn) colLabels.push('⟨zero⟩');
  return {
    b, width, sideWidth, rowLabels, rowW, colLabels,
    rowDim: Array.from({ length: L }, (_, l) => input.padding[b * L + l] === 1),
    colMasked: Array.from({ length: S }, (_, j) => j < Lk && input.mask[b * Lk + j] === 1),
    colHeaderHeight: Math.min(72, labelWidth(colLabels, 72)),
    wideCell: (cols, w = width) => clamp(Math.floor((w - rowW - 4) / cols), 3, 18),
  };
}

// X, or its token-embedding or positional part.
function renderInputMap(views, run, f) {
  const { input } = run;
  const { L, E } = input;
  const xview = input.embedding ? radio('xview') : 'x';
  for (const r of document.querySelectorAll('input[name="xview"]')) r.disabled = !input.embedding;
  const xsrc = xview === 'emb' ? input.embedding : xview === 'pe' ? input.positional : input.X.data;
  const xdata = xsrc.subarray(f.b * L * E, (f.b + 1) * L * E);
  const xname = { x: 'X', emb: 'token embedding', pe: 'positional encoding' }[xview];
  const xm = heatmap(views, 'x', { kind: 'x' });
  xm.update({
    data: xdata, rows: L, cols: E, cell: f.wideCell(E, f.sideWidth), title: `${xname} [L, E] = [${L}, ${E}]`,
    ariaLabel: `${xname} of sequence ${f.b + 1}, ${L} tokens by ${E} dimensions`,
    rowLabels: f.rowLabels, rowLabelWidth: f.rowW, rowDim: f.rowDim, colLabels: index(E), colMode: 'index', colHeaderHeight: 14,
    scale: { kind: 'div', max: maxAbs(xdata) }, rowName: 'token', colName: 'dim',
  });
  xm.el.dataset.view = xview;
  if (!xm.el.isConnected) $('x-map').append(xm.el);
}

// Per-head cards (weights | Zᵢ), then the average beside them. One cell size
// for all, chosen so as many cards fit a row as stay readable.
function renderHeads(views, run, f, onToggleMask) {
  const { p, input, result, average, layer } = run;
  const { L, S, E } = input;
  const h = p.h, d = result.heads.dims[3], b = f.b;
  const C = h * d;
  const perGroup = h / layer.numKVHeads;  // query heads per key/value head
  const gap = 12, pad = 10, inner = 12;
  const cardCell = (perRow) => Math.floor(((f.width - (perRow - 1) * gap) / perRow - 2 * pad - f.rowW - inner - 4) / (S + d));
  // Short sequences get cells tall enough for every token label (12 px);
  // long ones accept smaller cells rather than one huge card per row.
  const minCell = Math.max(L, S) <= 16 ? 12 : 8;
  let perRow = Math.min(h + 1, 4);
  while (perRow > 1 && cardCell(perRow) < minCell) perRow--;
  const cell = clamp(cardCell(perRow), 3, 22);
  const zScale = maxAbs(result.concat.data, b * L * C, (b + 1) * L * C);  // Zᵢ share the concat's scale
  const wPerHead = result.weights.data;
  const wScale = Math.max(maxOf(wPerHead, b * h * L * S, (b + 1) * h * L * S), maxOf(average.data, b * L * S, (b + 1) * L * S)) || 1;
  const onColumnClick = (j) => onToggleMask(b, j);
  const entropyOf = new Map(run.ranking.map((r) => [r.head, r]));
  const weightMap = { rowLabels: f.rowLabels, rowLabelWidth: f.rowW, rowDim: f.rowDim, colLabels: f.colLabels, colMode: 'text',
    colHeaderHeight: f.colHeaderHeight, colMasked: f.colMasked, scale: { kind: 'seq', max: wScale }, rowName: 'query', colName: 'key' };
  const cards = [];
  for (let i = 0; i < h; i++) {
    const key = `head${i}`;
    const readout = cardReadout(views, key);
    const wm = heatmap(views, `${key}w`, { kind: 'head-weights', onColumnClick, readout });
    const zm = heatmap(views, `${key}z`, { kind: 'head-output', extraClass: 'no-rows', readout });
    wm.el.dataset.head = String(i);
    zm.el.dataset.head = String(i);
    const woff = (b * h + i) * L * S;
    wm.update({
      ...weightMap, data: wPerHead.subarray(woff, woff + L * S), rows: L, cols: S, cell,
      title: '', legend: false, ariaLabel: `Head ${i + 1} attention weights, ${L} queries by ${S} keys`,
    });
    const zoff = (b * h + i) * L * d;
    zm.update({
      data: result.heads.data.subarray(zoff, zoff + L * d), rows: L, cols: d, cell,
      title: '', legend: false, ariaLabel: `Head ${i + 1} output Z${i + 1}, ${L} queries by ${d} dimensions`,
      rowLabels: null, rowNames: f.rowLabels, rowDim: f.rowDim, colLabels: index(d), colMode: 'index', colHeaderHeight: f.colHeaderHeight,
      scale: { kind: 'div', max: zScale }, rowName: 'query', colName: 'dim',
    });
    const notes = [`weights [${L}, ${S}]`, `Z${sub(i + 1)} [${L}, ${d}]`, `H̄ ${entropyOf.get(i).mean.toFixed(3)}`];
    const c = card(views, key, `Head ${i + 1}`, notes, [wm.el, zm.el], i);
    markGroup(c, perGroup < h || layer.numKVHeads < h ? Math.floor(i / perGroup) : null);
    cards.push(c);
  }
  const am = heatmap(views, 'avg', { kind: 'average-weights', onColumnClick, readout: cardReadout(views, 'avg') });
  am.update({
    ...weightMap, data: average.data.subarray(b * L * S, (b + 1) * L * S), rows: L, cols: S, cell,
    title: '', legend: false, ariaLabel: `Attention weights averaged over the ${h} heads, ${L} queries by ${S} keys`,
  });
  cards.push(card(views, 'avg', 'Average of the heads', [`[${L}, ${S}]`, 'needWeights: \'average\''], [am.el], 'avg'));
  fillLegend($('legend-w'), { kind: 'seq', max: wScale });
  fillLegend($('legend-z'), { kind: 'div', max: zScale });
  dropHeadsFrom(views, h);
  const headsBox = $('heads');
  if (cards.some((c, i) => headsBox.children[i] !== c) || headsBox.children.length !== cards.length) headsBox.replaceChildren(...cards);
  const causal = p.causal ? ' Causal: a query sees only keys at or before its position.' : '';
  $('heads-note').textContent = 'Per head: the attention weights (rows: queries, columns: keys; each row sums to 1) and the head\'s output Zᵢ.' +
    `${causal} Hatched columns are masked keys. Hover or focus a map and use the arrow keys for exact values.`;
  return zScale;
}

// Heads sharing a key/value head share a colour class (kv0 … kv7) and a label.
function markGroup(cardEl, group) {
  for (const cls of [...cardEl.classList]) if (cls.startsWith('kv')) cardEl.classList.remove(cls);
  const h3 = cardEl.querySelector('h3');
  h3.querySelector('.kv')?.remove();
  if (group == null) {
    delete cardEl.dataset.kvGroup;
    return;
  }
  cardEl.dataset.kvGroup = String(group);
  cardEl.classList.add(`kv${group % 8}`);
  const tag = document.createElement('span');
  tag.className = 'kv';
  tag.textContent = `kv ${group + 1}`;
  tag.title = `Reads key/value head ${group + 1}, shared with the heads of the same colour`;
  h3.firstChild.after(tag);
}

// The concatenation with its head bands, then the output.
function renderConcatAndOutput(views, run, f, zScale) {
  const { p, input, result } = run;
  const { L, E } = input;
  const h = p.h, d = result.heads.dims[3], b = f.b;
  const C = h * d;
  const common = { rowLabels: f.rowLabels, rowLabelWidth: f.rowW, rowDim: f.rowDim, colMode: 'index', colHeaderHeight: 14 };
  const cm = heatmap(views, 'concat', { kind: 'concat' });
  const bands = Array.from({ length: h }, (_, i) => ({ start: i * d, end: (i + 1) * d, label: `Z${sub(i + 1)}` }));
  cm.update({
    ...common, colLabels: index(C), data: result.concat.data.subarray(b * L * C, (b + 1) * L * C), rows: L, cols: C, cell: f.wideCell(C),
    title: `concat [L, h·d] = [${L}, ${h}·${d}] = [${L}, ${C}]`, ariaLabel: `Concatenation of the ${h} head outputs, ${L} queries by ${C} columns`,
    bands, scale: { kind: 'div', max: zScale }, rowName: 'query', colName: 'column',
  });
  if (!cm.el.isConnected) $('concat-map').append(cm.el);
  $('concat-note').textContent = `Z${sub(1)} … Z${sub(h)} side by side: head i fills columns i·d … i·d + ${d - 1} (d = ${d}). Same colour scale as the Zᵢ above.`;

  const om = heatmap(views, 'output', { kind: 'output' });
  const odata = result.output.data.subarray(b * L * E, (b + 1) * L * E);
  om.update({
    ...common, colLabels: index(E), data: odata, rows: L, cols: E, cell: f.wideCell(E),
    title: `output [L, E] = [${L}, ${E}]`, ariaLabel: `Output, ${L} queries by ${E} dimensions`,
    scale: { kind: 'div', max: maxAbs(odata) }, rowName: 'query', colName: 'dim',
  });
  if (!om.el.isConnected) $('output-map').append(om.el);
  $('output-note').textContent = `output = concat · Wₒᵀ${p.bias ? ' + b_O' : ''}: back to width E = ${E}, one row per query.`;
  $('concat-note').dataset.width = String(C);
}

// Which keys each query may see, from the options (mask_preview.js).
function renderMaskPreview(views, run, f) {
  const { p, input, layer } = run;
  const { L, Lk, S } = input;
  const data = visibleKeys({ L, Lk, S, mask: input.mask, b: f.b, causal: p.causal, window: layer.slidingWindow });
  const m = heatmap(views, 'mask', { kind: 'mask' });
  const cell = clamp(Math.floor((f.sideWidth - f.rowW - 4) / S), 3, 16);
  m.update({
    data, rows: L, cols: S, cell, title: `visible keys [L, S] = [${L}, ${S}]`,
    ariaLabel: `Which of the ${S} keys each of the ${L} queries may see: 1 visible, 0 hidden`,
    rowLabels: f.rowLabels, rowLabelWidth: f.rowW, rowDim: f.rowDim, colLabels: f.colLabels, colMode: 'text',
    colHeaderHeight: f.colHeaderHeight, colMasked: f.colMasked, scale: { kind: 'seq', max: 1 }, rowName: 'query', colName: 'key',
  });
  if (!m.el.isConnected) $('mask-map').append(m.el);
  const rules = ['padding', 'masked keys'];
  if (p.causal) rules.push('causal');
  if (layer.slidingWindow) rules.push(`a window of W = ${layer.slidingWindow}`);
  $('mask-note').textContent = `Which keys each query may see (1: visible, 0: hidden), from ${rules.join(', ')}. A hidden key gets weight 0 in every head.`;
}

// What RoPE keeps and what a shift of every position does, with the layer's numbers.
function renderPositionNotes(run) {
  const { layer, shiftCheck, p } = run;
  const r = layer.rope;
  $('rope-note').textContent = r
    ? `r = ${r.dim} of d = ${layer.headDim} features rotate in pairs (θ = ${r.base}); ` +
      (r.dim < layer.headDim ? `the other ${layer.headDim - r.dim} pass through unrotated, so they compare content at any distance.` : 'all of them carry position.')
    : '';
  let shift = '';
  if (shiftCheck) {
    const what = r || layer.alibi ? 'the same relative distances, so the same weights' : 'no position-dependent option is on, so positions change nothing';
    shift = `Positions ${shiftCheck.shift}, ${shiftCheck.shift + 1}, … instead of 0, 1, …: ${what}. ` +
      `Largest change of a weight: ${shiftCheck.maxDiff.toExponential(1)} (float32 rounding).`;
  } else if (p.decoder.shift === 0 && (r || layer.alibi)) {
    shift = 'Set k to shift every position: the weights stay the same, as they depend only on distances.';
  }
  $('shift-note').textContent = shift;
}

/** Draws state.last, for the sequence state.selectedBatch (clamped to the batch). */
export function render(state, { onToggleMask, onPickHead }) {
  const run = state.last;
  const { p, input, result } = run;
  const { B, L, Lk, S, E } = input;
  state.selectedBatch = clamp(state.selectedBatch, 0, B - 1);
  const b = state.selectedBatch;
  // Layout reads first (every block of a column has the same inner width), then only writes.
  const f = frameOf(run, b, $('heads').clientWidth, $('x-map').clientWidth);

  renderBatchSelect(input, b);
  renderKeys(input, b, onToggleMask);
  renderInputMap(state.views, run, f);
  run.ranking = rankHeads(result.weights.data, { b, H: p.h, L, S, rowIsPadding: f.rowDim });
  renderMaskPreview(state.views, run, f);
  renderWalk($('walk'), {
    B, L, Lk, S, E, h: p.h, d: result.heads.dims[3], b, cross: input.cross, X: input.X.data, heads: result.heads.data,
    concat: result.concat.data, output: result.output.data, weightsDims: result.weights.dims,
  });
  const zScale = renderHeads(state.views, run, f, onToggleMask);
  renderConcatAndOutput(state.views, run, f, zScale);
  renderRanking(run, state.compare, onPickHead);
  renderCompare(state.views, run, f, state.compare);
  renderPositionNotes(run);

  const t = run.timings;
  $('info-forward').textContent = `${t.forward.toFixed(2)} ms (+${t.averageForward.toFixed(2)} ms averaged pass)`;
  $('export').disabled = false;
}
