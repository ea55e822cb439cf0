// The demo page's controller: reads the controls, builds the input X, runs the
// package's forward pass, and draws every stage. The page does no attention
// maths: the weights, head outputs Zᵢ, concatenation and output are the arrays
// the package returns; the page only makes the token embeddings (embeddings.js).
//
// Flow: any control change → schedule() → (next frame) update():
//   readParams()  checks every field; a bad one gets its message next to it and
//                 the page keeps showing the last good result (never blank);
//   buildInput()  X [B, L, E], the key/value input, keyPaddingMask [B, Lk];
//   ensureLayer() a layer per (E, h, bias, …, seed | state_dict), reused while
//                 those stay the same;
//   forward ×2    per-head weights + heads + concat, then the averaged weights
//                 (the average is the package's too, not the page's);
//   render()      from the last good run only, so a stale control never mixes
//                 with the numbers shown.
import { embedTokens, tokenize, splitLines, randomMatrix, MAX_L, MAX_B, MAX_E, PAD } from './embeddings.js';
import { parseMatrix, parseStateDict, parseWhole, explainHeads, attentionPrefix, InputError } from './parse.js';
import { Heatmap, labelWidth, fillLegend, makeReadout } from './heatmap.js';
import { renderWalk, sub } from './walk.js';
import { buildExport, downloadJson } from './export.js';

// The package, through its public entry (the import map's 'mha-wasm'). Loaded
// dynamically so that a missing build says so on the page instead of leaving
// it stuck at "Loading".
let MultiheadAttention, capabilities, version, parseSafetensors, safetensorsToStateDict;
try {
  ({ MultiheadAttention, capabilities, version, parseSafetensors, safetensorsToStateDict } = await import('mha-wasm'));
} catch (err) {
  const status = document.getElementById('status');
  status.textContent = `Could not load the mha-wasm package from /dist/ (${err.message}). Build it (npm start does) and reload.`;
  status.dataset.kind = 'stale';
  document.getElementById('app').dataset.state = 'error';
  throw err;
}

const $ = (id) => document.getElementById(id);
const app = $('app');
// Fields that can be wrong; each has a message slot `${id}-msg` next to it.
const FIELD_NAMES = {
  text: 'Sentences', matrix: 'Matrix', 'rand-seed': 'Seed of X', 'rand-len': 'Length L', 'key-text': 'Key/value text',
  E: 'Width E', h: 'Heads h', seed: 'Weight seed', 'state-file': 'state_dict file',
};
const FIELDS = Object.keys(FIELD_NAMES);
const MAX_SEED = 2 ** 32 - 1;

// ---------------------------------------------------------------------------
// State that is not in the controls themselves.

const masked = new Set();       // user-masked keys, as "b:j:token" (dropped when that token changes)
let selectedBatch = 0;
let stateDict = null;           // parsed state_dict file (name → Float32Array)
let stateDictName = null;
let stateDictVersion = 0;
let stateFileError = null;      // the file could not be read as a state_dict
let typedE = $('E').value;      // E as typed, restored when leaving matrix mode
let last = null;                // the last good run: { p, input, result, average, timings }
let runs = 0;

// ---------------------------------------------------------------------------
// Reading and checking the controls

const radio = (name) => document.querySelector(`input[name="${name}"]:checked`).value;

function tooLong(n, where) {
  return new InputError(`${where} has ${n} tokens; this page caps L at ${MAX_L} ` +
    '(the weight maps grow as L², and would be unreadable). Shorten it.');
}

/** Every control's value, checked. Returns { p, errors: { fieldId: message } }. */
function readParams() {
  const errors = {};
  const field = (id, fn) => {
    try {
      return fn();
    } catch (err) {
      if (!(err instanceof InputError)) throw err;
      errors[id] = err.message;
      return null;
    }
  };
  const p = {
    mode: radio('mode'),
    cross: $('cross').checked,
    causal: $('causal').checked,
    bias: $('bias').checked,
    addBiasKV: $('bias-kv').checked,
    addZeroAttn: $('zero-attn').checked,
    fullyMaskedRows: $('masked-rows').value,
    weights: radio('weights'),
    stateDictName,
  };

  if (p.mode === 'text') {
    p.text = $('text').value;
    p.tokens = field('text', () => {
      const lines = splitLines(p.text);
      if (lines.length === 0)
        throw new InputError('The sentence is empty: type at least one word (each line is one sequence).');
      if (lines.length > MAX_B) throw new InputError(`${lines.length} lines: this page takes at most ${MAX_B} sequences at once.`);
      const tokens = lines.map(tokenize);
      tokens.forEach((t, i) => { if (t.length > MAX_L) throw tooLong(t.length, lines.length > 1 ? `Line ${i + 1}` : 'The sentence'); });
      p.lines = lines;
      return tokens;
    });
  } else if (p.mode === 'matrix') {
    p.matrix = field('matrix', () => {
      const m = parseMatrix($('matrix').value);
      const [B, L, E] = m.dims;
      if (B > MAX_B) throw new InputError(`${B} sequences: this page takes at most ${MAX_B} at once.`);
      if (L > MAX_L) throw tooLong(L, 'The matrix');
      if (E > MAX_E) throw new InputError(`The rows are ${E} wide; this page caps E at ${MAX_E}.`);
      return m;
    });
  } else {
    p.randSeed = field('rand-seed', () => parseWhole($('rand-seed').value, { name: 'The seed', min: 0, max: MAX_SEED }));
    p.randL = field('rand-len', () => {
      const s = $('rand-len').value.trim();
      if (/^\d+$/.test(s) && Number(s) > MAX_L) throw tooLong(Number(s), `L = ${s}`);
      return parseWhole(s, { name: 'L', min: 1, max: MAX_L });
    });
  }

  // In matrix mode E is the matrix's width; the field shows it, read-only.
  if (p.mode === 'matrix') {
    p.E = p.matrix ? p.matrix.dims[2] : null;
  } else {
    p.E = field('E', () => parseWhole($('E').value, { name: 'E', min: 1, max: MAX_E }));
  }
  p.h = field('h', () => parseWhole($('h').value, { name: 'h', min: 1, max: MAX_E }));
  if (p.E != null && p.h != null) {
    const why = explainHeads(p.E, p.h);
    if (why) errors.h = why;
  }
  if (p.weights === 'seeded') {
    p.seed = field('seed', () => parseWhole($('seed').value, { name: 'The seed', min: 0, max: MAX_SEED }));
  } else if (stateFileError) {
    errors['state-file'] = stateFileError;
  } else if (stateDict == null) {
    errors['state-file'] = 'Choose a state_dict JSON file, or switch back to seeded weights.';
  }

  if (p.cross) {
    p.keyText = $('key-text').value;
    p.keyTokens = field('key-text', () => {
      const lines = splitLines(p.keyText);
      if (lines.length === 0) throw new InputError('The key/value text is empty: type at least one word, or turn cross-attention off.');
      const tokens = lines.map(tokenize);
      tokens.forEach((t, i) => { if (t.length > MAX_L) throw tooLong(t.length, lines.length > 1 ? `Line ${i + 1}` : 'The key/value text'); });
      return tokens;
    });
  }
  return { p, errors };
}

// ---------------------------------------------------------------------------
// The input tensors

/**
 * X [B, L, E] (and its parts, for text), the key/value input for
 * cross-attention, their labels, and keyPaddingMask [B, Lk] = padding ∪ clicked.
 */
function buildInput(p) {
  const E = p.E;
  let X, B, L, labels, padding, embedding = null, positional = null;
  if (p.mode === 'text') {
    const emb = embedTokens(p.tokens, E);
    ({ B, L, labels, padding } = emb);
    X = { data: emb.data, dims: [B, L, E] };
    embedding = emb.embedding;
    positional = emb.positional;
  } else {
    const data = p.mode === 'matrix' ? p.matrix.data : randomMatrix(p.randSeed, p.randL, E);
    [B, L] = p.mode === 'matrix' ? p.matrix.dims : [1, p.randL];
    X = { data, dims: [B, L, E] };
    labels = Array.from({ length: B }, () => Array.from({ length: L }, (_, l) => `x${l}`));
    padding = new Uint8Array(B * L);
  }

  let key = null, keyLabels = labels, keyPadding = padding, Lk = L;
  if (p.cross) {
    if (p.keyTokens.length !== 1 && p.keyTokens.length !== B)
      throw Object.assign(new InputError(`${p.keyTokens.length} key/value lines for ${B} sequences: give one line (shared) or one per sequence.`), { field: 'key-text' });
    const lists = p.keyTokens.length === 1 ? Array(B).fill(p.keyTokens[0]) : p.keyTokens;
    const kemb = embedTokens(lists, E);
    key = { data: kemb.data, dims: [B, kemb.L, E] };
    keyLabels = kemb.labels;
    keyPadding = kemb.padding;
    Lk = kemb.L;
  }

  // Drop masks whose token changed (or vanished), then build the mask.
  const mask = new Uint8Array(B * Lk);
  const keep = new Set();
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < Lk; j++) {
      const id = `${b}:${j}:${keyLabels[b][j]}`;
      const user = masked.has(id) && !keyPadding[b * Lk + j];
      if (user) keep.add(id);
      mask[b * Lk + j] = keyPadding[b * Lk + j] || user ? 1 : 0;
    }
  }
  for (const id of [...masked]) if (!keep.has(id)) masked.delete(id);

  const S = Lk + (p.addBiasKV ? 1 : 0) + (p.addZeroAttn ? 1 : 0);
  return {
    B, L, Lk, S, E, X, key, labels, keyLabels, padding, keyPadding, mask, embedding, positional,
    cross: p.cross, lines: p.lines ?? null,
  };
}

// ---------------------------------------------------------------------------
// The layer, kept while its configuration stays the same

let layer = null;
let layerKey = '';

class FieldError extends Error {
  constructor(field, message) { super(message); this.field = field; }
}

function layerKeyOf(p) {
  const source = p.weights === 'file' ? `file#${stateDictVersion}` : `seed:${p.seed}`;
  return [p.E, p.h, p.bias, p.addBiasKV, p.addZeroAttn, source];
}

async function ensureLayer(p) {
  const key = JSON.stringify(layerKeyOf(p));
  if (layer && key === layerKey) return layer;
  let mha;
  try {
    mha = await MultiheadAttention.create({
      embedDim: p.E, numHeads: p.h, bias: p.bias, addBiasKV: p.addBiasKV, addZeroAttn: p.addZeroAttn,
      seed: p.weights === 'file' ? 0 : p.seed,
    });
  } catch (err) {
    throw new FieldError(/numHeads/.test(err.message) ? 'h' : 'E', err.message);
  }
  if (p.weights === 'file') {
    try {
      mha.loadStateDict(stateDict);
    } catch (err) {
      mha.dispose();
      // The package's own message: it names every missing, unexpected or misshapen key.
      throw new FieldError('state-file', `${err.message} — set E, h, bias and add_bias_kv to match the layer this file came from.`);
    }
  }
  layer?.dispose();
  layer = mha;
  layerKey = key;
  return layer;
}

// ---------------------------------------------------------------------------
// One update

function showErrors(errors) {
  for (const id of FIELDS) {
    const msg = $(`${id}-msg`);
    const text = errors[id] ?? '';
    if (msg.textContent !== text) msg.textContent = text;
    const input = $(id);
    if (text) input.setAttribute('aria-invalid', 'true');
    else input.removeAttribute('aria-invalid');
  }
  // E % h breaks are about both fields.
  if (errors.h && /cannot be split/.test(errors.h)) $('E').setAttribute('aria-invalid', 'true');
}

function setStatus(text, kind) {
  const s = $('status');
  s.textContent = text;
  s.dataset.kind = kind;
}

function syncModeFields(mode, matrixDims) {
  for (const el of document.querySelectorAll('[data-mode]')) el.hidden = el.dataset.mode !== mode;
  $('key-field').hidden = !$('cross').checked;
  $('seed').disabled = radio('weights') !== 'seeded';
  const E = $('E');
  if (mode === 'matrix') {
    if (!E.readOnly) typedE = E.value;
    E.readOnly = true;
    E.value = matrixDims ? String(matrixDims[2]) : '';
    E.title = 'E is the width of the matrix';
  } else if (E.readOnly) {
    E.readOnly = false;
    E.value = typedE;
    E.title = '';
  }
}

async function update() {
  const t0 = performance.now();
  const { p, errors } = readParams();
  syncModeFields(p.mode, p.matrix?.dims);
  let input = null;
  if (Object.keys(errors).length === 0) {
    try {
      input = buildInput(p);
    } catch (err) {
      if (!(err instanceof InputError)) throw err;
      errors[err.field ?? (p.mode === 'text' ? 'text' : 'matrix')] = err.message;
    }
  }
  let pageError = null;
  let layerMs = 0;  // time spent creating a new layer (awaited), left out of the re-render time
  if (input) {
    try {
      const l0 = performance.now();
      const reused = layer && layerKey === JSON.stringify(layerKeyOf(p));
      const mha = await ensureLayer(p);
      if (!reused) layerMs = performance.now() - l0;
      const options = {
        keyPaddingMask: { data: input.mask, dims: [input.B, input.Lk] },
        isCausal: p.causal,
        fullyMaskedRows: p.fullyMaskedRows,
      };
      const kv = input.cross ? input.key : null;
      const f0 = performance.now();
      const result = mha.forward(input.X, kv, kv, { ...options, needWeights: 'per-head', returnHeads: true, returnConcat: true });
      const f1 = performance.now();
      // The average over heads is the package's own (needWeights: 'average'), not the page's.
      const average = mha.forward(input.X, kv, kv, { ...options, needWeights: 'average' }).weights;
      const f2 = performance.now();
      last = {
        p, input, result, average, options,
        timings: { forward: f1 - f0, averageForward: f2 - f1, layer: layerMs, draw: 0, render: 0 },
      };
    } catch (err) {
      if (err instanceof FieldError) errors[err.field] = err.message;
      else pageError = `The package failed: ${err.name}: ${err.message}`;  // not about one field
    }
  }
  showErrors(errors);
  if (p.E != null && p.h != null && p.E % p.h === 0) {
    $('h-rule').textContent = `Each head gets d = E / h = ${p.E} / ${p.h} = ${p.E / p.h} columns of Q, K and V; ` +
      `the heads' outputs Z${sub(1)} … Z${sub(p.h)} are concatenated back to width E.`;
  }
  const bad = Object.keys(errors).length > 0 || pageError != null;
  if (last) {
    const r0 = performance.now();
    render();  // the new run, or the last good one again (e.g. at a new width)
    const r1 = performance.now();
    if (!bad) {
      const t = last.timings;
      t.draw = r1 - r0;
      // Controls read → input built → forward ×2 → everything drawn; a new layer's creation excluded.
      t.render = r1 - t0 - layerMs;
      app.dataset.renderMs = t.render.toFixed(2);
      app.dataset.drawMs = t.draw.toFixed(2);
      app.dataset.forwardMs = t.forward.toFixed(3);
      $('info-render').textContent = `${t.render.toFixed(1)} ms (drawing ${t.draw.toFixed(1)} ms)`;
    }
  }
  runs++;
  app.dataset.runs = String(runs);
  app.dataset.state = bad ? (last ? 'stale' : 'error') : 'ready';
  if (pageError) {
    setStatus(last ? `${pageError} Showing the last good result.` : pageError, 'stale');
  } else if (bad) {
    const first = FIELDS.find((id) => errors[id]);
    const label = FIELD_NAMES[first];
    setStatus(last ? `Showing the last good result: fix “${label}” (its message is next to it).` : `Nothing to show yet: fix “${label}”.`, 'stale');
  } else {
    setStatus('Up to date.', 'ok');
  }
  expose();
}

// ---------------------------------------------------------------------------
// Rendering the last good run

const maps = new Map();
function heatmap(key, opts) {
  let m = maps.get(key);
  if (!m) {
    m = new Heatmap({ kind: opts.kind, onColumnClick: opts.onColumnClick, extraClass: opts.extraClass, readout: opts.readout });
    maps.set(key, m);
  }
  return m;
}

const clamp = (v, lo, hi) => Math.max(lo, Math.min(hi, v));

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

function toggleMask(b, j) {
  const { input } = last;
  if (j >= input.Lk || input.keyPadding[b * input.Lk + j]) return;  // padding and bias_k/zero keys stay as they are
  const id = `${b}:${j}:${input.keyLabels[b][j]}`;
  if (masked.has(id)) masked.delete(id); else masked.add(id);
  schedule();
}

function renderBatchSelect(input) {
  const sel = $('batch');
  const names = input.labels.map((t, b) => `${b + 1}: ${t.filter((x) => x !== PAD).slice(0, 5).join(' ')}${t.length > 5 ? ' …' : ''}`);
  const want = names.join('\n');
  if (sel.dataset.names !== want) {
    sel.replaceChildren(...names.map((n, b) => new Option(n, String(b))));
    sel.dataset.names = want;
  }
  sel.value = String(selectedBatch);
  sel.disabled = input.B < 2;
}

function renderKeys(input, b) {
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
    else btn.addEventListener('click', () => toggleMask(b, j));
    buttons.push(btn);
  }
  // Keep keyboard focus on the same token across the re-render.
  const focused = box.contains(document.activeElement) ? document.activeElement.dataset.index : null;
  box.replaceChildren(...buttons);
  if (focused != null) box.querySelector(`[data-index="${focused}"]`)?.focus();
}

function render() {
  const { p, input, result, average } = last;
  const { B, L, Lk, S, E } = input;
  const h = p.h, d = E / h;
  selectedBatch = clamp(selectedBatch, 0, B - 1);
  const b = selectedBatch;
  // Layout reads first (every block of a column has the same inner width), then only writes.
  const width = $('heads').clientWidth;
  const sideWidth = $('x-map').clientWidth;

  renderBatchSelect(input);
  renderKeys(input, b);
  $('keys-note').textContent = `${input.cross ? 'Keys (the key/value text) of' : 'Keys of'} this sequence: click a token to mask it as a key (no query may attend to it); click again to unmask.`;

  const rowLabels = input.labels[b];
  const rowDim = Array.from({ length: L }, (_, l) => input.padding[b * L + l] === 1);
  const rowW = labelWidth(rowLabels);
  const colLabels = [...input.keyLabels[b]];
  if (p.addBiasKV) colLabels.push('⟨bias_k⟩');
  if (p.addZeroAttn) colLabels.push('⟨zero⟩');
  const colMasked = Array.from({ length: S }, (_, j) => j < Lk && input.mask[b * Lk + j] === 1);
  const colHeaderHeight = Math.min(72, labelWidth(colLabels, 72));
  const index = (n) => Array.from({ length: n }, (_, i) => String(i));
  const wideCell = (cols, w = width) => clamp(Math.floor((w - rowW - 4) / cols), 3, 18);

  // Input X (or its parts).
  const xview = input.embedding ? radio('xview') : 'x';
  for (const r of document.querySelectorAll('input[name="xview"]')) r.disabled = !input.embedding;
  const xsrc = xview === 'emb' ? input.embedding : xview === 'pe' ? input.positional : input.X.data;
  const xdata = xsrc.subarray(b * L * E, (b + 1) * L * E);
  const xname = { x: 'X', emb: 'token embedding', pe: 'positional encoding' }[xview];
  const xm = heatmap('x', { kind: 'x' });
  xm.update({
    data: xdata, rows: L, cols: E, cell: wideCell(E, sideWidth), title: `${xname} [L, E] = [${L}, ${E}]`,
    ariaLabel: `${xname} of sequence ${b + 1}, ${L} tokens by ${E} dimensions`,
    rowLabels, rowLabelWidth: rowW, rowDim, colLabels: index(E), colMode: 'index', colHeaderHeight: 14,
    scale: { kind: 'div', max: maxAbs(xdata) }, rowName: 'token', colName: 'dim',
  });
  xm.el.dataset.view = xview;
  if (!xm.el.isConnected) $('x-map').append(xm.el);

  // Shape walk.
  renderWalk($('walk'), {
    B, L, Lk, S, E, h, d, b, cross: input.cross, X: input.X.data, heads: result.heads.data,
    concat: result.concat.data, output: result.output.data, weightsDims: result.weights.dims,
  });

  // Per-head cards (weights | Zᵢ), then the average beside them. One cell
  // size for all, chosen so as many cards fit a row as stay readable.
  const gap = 12, pad = 10, inner = 12;
  const cardCell = (perRow) => Math.floor(((width - (perRow - 1) * gap) / perRow - 2 * pad - rowW - inner - 4) / (S + d));
  // Short sequences get cells tall enough for every token label (12 px);
  // long ones accept smaller cells rather than one huge card per row.
  const minCell = Math.max(L, S) <= 16 ? 12 : 8;
  let perRow = Math.min(h + 1, 4);
  while (perRow > 1 && cardCell(perRow) < minCell) perRow--;
  const cell = clamp(cardCell(perRow), 3, 22);
  const zScale = maxAbs(result.concat.data, b * L * E, (b + 1) * L * E);  // Zᵢ share the concat's scale
  const wPerHead = result.weights.data;
  const wScale = Math.max(maxOf(wPerHead, b * h * L * S, (b + 1) * h * L * S), maxOf(average.data, b * L * S, (b + 1) * L * S)) || 1;
  const headsBox = $('heads');
  const cards = [];
  for (let i = 0; i < h; i++) {
    const key = `head${i}`;
    const readout = cardReadout(key);
    const wm = heatmap(`${key}w`, { kind: 'head-weights', onColumnClick: (j) => toggleMask(selectedBatch, j), readout });
    const zm = heatmap(`${key}z`, { kind: 'head-output', extraClass: 'no-rows', readout });
    wm.el.dataset.head = String(i);
    zm.el.dataset.head = String(i);
    const woff = (b * h + i) * L * S;
    wm.update({
      data: wPerHead.subarray(woff, woff + L * S), rows: L, cols: S, cell,
      title: '', legend: false, ariaLabel: `Head ${i + 1} attention weights, ${L} queries by ${S} keys`,
      rowLabels, rowLabelWidth: rowW, rowDim, colLabels, colMode: 'text', colHeaderHeight, colMasked,
      scale: { kind: 'seq', max: wScale }, rowName: 'query', colName: 'key',
    });
    const zoff = (b * h + i) * L * d;
    zm.update({
      data: result.heads.data.subarray(zoff, zoff + L * d), rows: L, cols: d, cell,
      title: '', legend: false, ariaLabel: `Head ${i + 1} output Z${i + 1}, ${L} queries by ${d} dimensions`,
      rowLabels: null, rowNames: rowLabels, rowDim, colLabels: index(d), colMode: 'index', colHeaderHeight,
      scale: { kind: 'div', max: zScale }, rowName: 'query', colName: 'dim',
    });
    cards.push(card(key, `Head ${i + 1}`, [`weights [${L}, ${S}]`, `Z${sub(i + 1)} [${L}, ${d}]`], [wm.el, zm.el], i));
  }
  const am = heatmap('avg', { kind: 'average-weights', onColumnClick: (j) => toggleMask(selectedBatch, j), readout: cardReadout('avg') });
  am.update({
    data: average.data.subarray(b * L * S, (b + 1) * L * S), rows: L, cols: S, cell,
    title: '', legend: false, ariaLabel: `Attention weights averaged over the ${h} heads, ${L} queries by ${S} keys`,
    rowLabels, rowLabelWidth: rowW, rowDim, colLabels, colMode: 'text', colHeaderHeight, colMasked,
    scale: { kind: 'seq', max: wScale }, rowName: 'query', colName: 'key',
  });
  cards.push(card('avg', 'Average of the heads', [`[${L}, ${S}]`, 'needWeights: \'average\''], [am.el], 'avg'));
  fillLegend($('legend-w'), { kind: 'seq', max: wScale });
  fillLegend($('legend-z'), { kind: 'div', max: zScale });
  // Drop the maps of heads that no longer exist.
  for (const k of [...maps.keys()]) {
    const m = /^head(\d+)[wz]$/.exec(k);
    if (m && Number(m[1]) >= h) { maps.delete(k); cardEls.delete(`head${m[1]}`); readouts.delete(`head${m[1]}`); }
  }
  if (cards.some((c, i) => headsBox.children[i] !== c) || headsBox.children.length !== cards.length) headsBox.replaceChildren(...cards);
  $('heads-note').textContent = p.causal
    ? 'Per head: the attention weights (rows: queries, columns: keys; each row sums to 1) and the head\'s output Zᵢ. Causal: a query sees only keys at or before its position. Hatched columns are masked keys. Hover or focus a map and use the arrow keys for exact values.'
    : 'Per head: the attention weights (rows: queries, columns: keys; each row sums to 1) and the head\'s output Zᵢ. Hatched columns are masked keys. Hover or focus a map and use the arrow keys for exact values.';

  // Concatenation with its head bands, then the output.
  const cm = heatmap('concat', { kind: 'concat' });
  const bands = Array.from({ length: h }, (_, i) => ({ start: i * d, end: (i + 1) * d, label: `Z${sub(i + 1)}` }));
  cm.update({
    data: result.concat.data.subarray(b * L * E, (b + 1) * L * E), rows: L, cols: E, cell: wideCell(E),
    title: `concat [L, h·d] = [${L}, ${h}·${d}] = [${L}, ${E}]`, ariaLabel: `Concatenation of the ${h} head outputs, ${L} queries by ${E} columns`,
    rowLabels, rowLabelWidth: rowW, rowDim, colLabels: index(E), colMode: 'index', colHeaderHeight: 14, bands,
    scale: { kind: 'div', max: zScale }, rowName: 'query', colName: 'column',
  });
  if (!cm.el.isConnected) $('concat-map').append(cm.el);
  $('concat-note').textContent = `Z${sub(1)} … Z${sub(h)} side by side: head i fills columns i·d … i·d + ${d - 1} (d = ${d}). Same colour scale as the Zᵢ above.`;

  const om = heatmap('output', { kind: 'output' });
  const odata = result.output.data.subarray(b * L * E, (b + 1) * L * E);
  om.update({
    data: odata, rows: L, cols: E, cell: wideCell(E),
    title: `output [L, E] = [${L}, ${E}]`, ariaLabel: `Output, ${L} queries by ${E} dimensions`,
    rowLabels, rowLabelWidth: rowW, rowDim, colLabels: index(E), colMode: 'index', colHeaderHeight: 14,
    scale: { kind: 'div', max: maxAbs(odata) }, rowName: 'query', colName: 'dim',
  });
  if (!om.el.isConnected) $('output-map').append(om.el);
  $('output-note').textContent = `output = concat · Wₒᵀ${p.bias ? ' + b_O' : ''}: back to width E = ${E}, one row per query.`;

  // What ran.
  const t = last.timings;
  $('info-forward').textContent = `${t.forward.toFixed(2)} ms (+${t.averageForward.toFixed(2)} ms averaged pass)`;
  $('export').disabled = false;
}

const cardEls = new Map();
const readouts = new Map();
function cardReadout(key) {
  if (!readouts.has(key)) readouts.set(key, makeReadout(`readout-${key}`));
  return readouts.get(key);
}
function card(key, title, notes, children, head) {
  let c = cardEls.get(key);
  if (!c) {
    c = document.createElement('article');
    c.className = head === 'avg' ? 'head-card avg' : 'head-card';
    c.dataset.head = String(head);
    const h3 = document.createElement('h3');
    const span = document.createElement('span');
    span.textContent = title;
    h3.append(span);
    const body = document.createElement('div');
    body.className = 'head-maps';
    c.append(h3, body, cardReadout(key));
    cardEls.set(key, c);
  }
  const h3 = c.querySelector('h3');
  const want = notes.join('\n');
  if (h3.dataset.notes !== want) {
    h3.dataset.notes = want;
    h3.replaceChildren(h3.firstChild, ...notes.map((n) => { const sm = document.createElement('small'); sm.textContent = n; return sm; }));
  }
  const body = c.querySelector('.head-maps');
  if (children.some((ch, i) => body.children[i] !== ch)) body.replaceChildren(...children);
  return c;
}

// ---------------------------------------------------------------------------
// Scheduling: coalesce bursts of events into one update per frame; one update
// at a time (creating a layer awaits), re-running if anything changed meanwhile.

let framePending = false;
let reading = 0;  // files being read (their change handler schedules when done)
let busy = false;
let dirty = false;
let waiters = [];

function schedule() {
  if (framePending) return;
  framePending = true;
  requestAnimationFrame(() => { framePending = false; pump(); });
}

async function pump() {
  if (busy) { dirty = true; return; }
  busy = true;
  try {
    do {
      dirty = false;
      try {
        await update();
      } catch (err) {
        // Never leave the page blank: say what broke, keep the last result.
        console.error(err);
        setStatus(`Unexpected error: ${err.message}`, 'stale');
        app.dataset.state = last ? 'stale' : 'error';
      }
    } while (dirty);
  } finally {
    busy = false;
  }
  settleWaiters();
}

function settleWaiters() {
  if (busy || framePending || reading > 0) return;
  const w = waiters;
  waiters = [];
  w.forEach((r) => r());
}

// ---------------------------------------------------------------------------
// What the tests (and curious people, from the console) can read.

function expose() {
  const arr = (t) => (t == null ? null : Array.from(t));
  window.__mhaDemo = {
    runs,
    state: app.dataset.state,
    whenSettled: () => new Promise((resolve) => {
      waiters.push(resolve);
      settleWaiters();
    }),
    /** Plain-array copies of the last good run: input, options, config and every result. */
    last: () => {
      if (!last) return null;
      const { p, input, result, average, timings } = last;
      return {
        config: { embedDim: input.E, numHeads: p.h, bias: p.bias, addBiasKV: p.addBiasKV, addZeroAttn: p.addZeroAttn,
          seed: p.weights === 'seeded' ? p.seed : null, weights: p.weights },
        mode: p.mode, lines: input.lines, tokens: input.labels, keyTokens: input.keyLabels, cross: input.cross,
        batch: selectedBatch,
        input: { X: arr(input.X.data), dims: input.X.dims, key: input.key ? arr(input.key.data) : null, keyDims: input.key?.dims ?? null },
        options: { keyPaddingMask: arr(input.mask), maskDims: [input.B, input.Lk], isCausal: p.causal, fullyMaskedRows: p.fullyMaskedRows },
        result: {
          output: arr(result.output.data), outputDims: result.output.dims,
          weights: arr(result.weights.data), weightsDims: result.weights.dims,
          average: arr(average.data), averageDims: average.dims,
          heads: arr(result.heads.data), headsDims: result.heads.dims,
          concat: arr(result.concat.data), concatDims: result.concat.dims,
        },
        timings,
      };
    },
  };
}

// ---------------------------------------------------------------------------
// Wiring

function wire() {
  const form = $('controls');
  // The file input schedules itself once the file is read.
  const onEdit = (e) => { if (e.target.id !== 'state-file') schedule(); };
  form.addEventListener('input', onEdit);
  form.addEventListener('change', onEdit);
  form.addEventListener('submit', (e) => e.preventDefault());
  $('batch').addEventListener('change', () => { selectedBatch = Number($('batch').value); schedule(); });
  for (const r of document.querySelectorAll('input[name="xview"]')) r.addEventListener('change', schedule);
  $('state-file').addEventListener('change', async () => {
    const file = $('state-file').files[0];
    if (!file) return;
    document.querySelector('input[name="weights"][value="file"]').checked = true;
    reading++;
    try {
      if (file.name.endsWith('.safetensors')) {
        // Hugging Face's format, read by the package: the file's first attention layer.
        const bytes = new Uint8Array(await file.arrayBuffer());
        const prefix = attentionPrefix(Object.keys(parseSafetensors(bytes).tensors));
        stateDict = safetensorsToStateDict(bytes, { prefix }).stateDict;
      } else {
        stateDict = parseStateDict(await file.text());
      }
      stateFileError = null;
    } catch (err) {
      stateDict = null;
      stateFileError = err instanceof InputError || err instanceof RangeError ? err.message : `Could not read ${file.name}: ${err.message}`;
    } finally {
      reading--;
    }
    stateDictName = file.name;
    stateDictVersion++;
    schedule();
  });
  $('export').addEventListener('click', () => {
    if (!last) return;
    downloadJson(buildExport(last, capabilities(), version), 'mha-wasm-demo.json');
  });
  // Heatmap cell sizes follow the column width.
  let lastWidth = $('results').clientWidth;
  new ResizeObserver(() => {
    const w = $('results').clientWidth;
    if (w !== lastWidth) { lastWidth = w; schedule(); }
  }).observe($('results'));
}

function showBuild() {
  const c = capabilities();
  $('info-version').textContent = `mha-wasm ${version}`;
  const yes = (v) => (v ? '✓' : '✗');
  // `threads` is a count of threads in use (or, from older builds, a boolean).
  const threads = typeof c.threads === 'number'
    ? `${c.threads} thread${c.threads === 1 ? '' : 's'}${c.maxThreads > 1 ? ` of ${c.maxThreads}` : ''}`
    : `threads ${yes(c.threads)}`;
  $('info-build').textContent = `${c.build}: SIMD ${yes(c.simd)}, ${threads}, cross-origin isolated ${yes(c.crossOriginIsolated)}`;
  $('info-build').title = `${c.reason}. Loaded from: ${c.loadedFrom}`;
  $('info-build').dataset.simd = String(c.simd);
  $('info-build').dataset.threads = String(c.threads);
  const why = document.createElement('span');
  why.className = 'why';
  why.textContent = ` — ${c.reason}`;
  $('info-build').append(why);
}

wire();
expose();
schedule();
// The build is known once the module has loaded (the first update creates a layer).
(async () => {
  const settle = () => new Promise((r) => window.__mhaDemo.whenSettled().then(r));
  await settle();
  showBuild();
})();
