// Reading the controls and building the input tensors. Every field is
// checked here, with a message meant for the slot next to it; nothing here
// touches the package.
import { embedTokens, tokenize, splitLines, randomMatrix, MAX_L, MAX_B, MAX_E } from './embeddings.js';
import { parseMatrix, parseWhole, parseNumber, explainHeads, InputError } from './parse.js';
import { $, radio } from './dom.js';

const MAX_SEED = 2 ** 32 - 1;

function tooLong(n, where) {
  return new InputError(`${where} has ${n} tokens; this page caps L at ${MAX_L} ` +
    '(the weight maps grow as L², and would be unreadable). Shorten it.');
}

// The lines of a text box as token lists, each at most MAX_L long.
function tokenLines(lines, what) {
  const tokens = lines.map(tokenize);
  tokens.forEach((t, i) => { if (t.length > MAX_L) throw tooLong(t.length, lines.length > 1 ? `Line ${i + 1}` : what); });
  return tokens;
}

/**
 * Every control's value, checked: { p, errors: { fieldId: message },
 * alsoInvalid: [fieldId] } (fields marked wrong whose message sits elsewhere).
 */
export function readParams(state) {
  const errors = {};
  const alsoInvalid = [];
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
    stateDictName: state.stateFile.name,
  };

  if (p.mode === 'text') {
    p.text = $('text').value;
    p.tokens = field('text', () => {
      const lines = splitLines(p.text);
      if (lines.length === 0)
        throw new InputError('The sentence is empty: type at least one word (each line is one sequence).');
      if (lines.length > MAX_B) throw new InputError(`${lines.length} lines: this page takes at most ${MAX_B} sequences at once.`);
      p.lines = lines;
      return tokenLines(lines, 'The sentence');
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

  p.decoder = readDecoder(field);
  const checkpoint = p.weights === 'checkpoint' ? state.checkpoint.mha : null;
  if (checkpoint) {
    // The checkpoint's layer says E and h (the package's getters).
    p.E = checkpoint.embedDim;
    p.h = checkpoint.numHeads;
    if (p.mode === 'matrix' && p.matrix && p.matrix.dims[2] !== p.E)
      errors.matrix = `The rows are ${p.matrix.dims[2]} wide, but the checkpoint's layer takes E = ${p.E}.`;
  } else if (p.mode === 'matrix') {
    // In matrix mode E is the matrix's width; the field shows it, read-only.
    p.E = p.matrix ? p.matrix.dims[2] : null;
  } else {
    p.E = field('E', () => parseWhole($('E').value, { name: 'E', min: 1, max: MAX_E }));
  }
  if (!checkpoint) p.h = field('h', () => parseWhole($('h').value, { name: 'h', min: 1, max: MAX_E }));
  if (!checkpoint && p.decoder.headDim == null && p.E != null && p.h != null) {
    const why = explainHeads(p.E, p.h);
    if (why) {
      errors.h = why;
      alsoInvalid.push('E');  // the split is about both fields; the message sits under h
    }
  }
  if (p.weights === 'seeded') {
    p.seed = field('seed', () => parseWhole($('seed').value, { name: 'The seed', min: 0, max: MAX_SEED }));
  } else if (p.weights === 'checkpoint') {
    if (state.checkpoint.error) errors[state.checkpoint.error.field] = state.checkpoint.error.message;
    else if (!checkpoint) errors['ckpt-files'] = 'Pick or drop a config.json and a model.safetensors, or switch back to seeded weights.';
  } else if (state.stateFile.error) {
    errors['state-file'] = state.stateFile.error;
  } else if (state.stateFile.dict == null) {
    errors['state-file'] = 'Choose a state_dict JSON file, or switch back to seeded weights.';
  }

  if (p.cross) {
    p.keyText = $('key-text').value;
    p.keyTokens = field('key-text', () => {
      const lines = splitLines(p.keyText);
      if (lines.length === 0) throw new InputError('The key/value text is empty: type at least one word, or turn cross-attention off.');
      return tokenLines(lines, 'The key/value text');
    });
  }
  return { p, errors, alsoInvalid };
}

// The decoder options, each checked for form only (numbers where numbers go);
// whether they fit together is the package's to say, with err.argument.
function readDecoder(field) {
  const optional = (id, read) => {
    const v = $(id).value.trim();
    return v === '' ? null : field(id, () => read(v));
  };
  const whole = (id, name, min = 1) => optional(id, (v) => parseWhole(v, { name, min, max: 2 ** 31 - 1 }));
  const number = (id, name) => optional(id, (v) => parseNumber(v, { name }));
  const rope = $('rope').checked;
  return {
    numKVHeads: whole('kv-heads', 'Key/value heads'),
    headDim: whole('head-dim', 'd'),
    scale: number('scale', 'The scale'),
    rope: rope ? { dim: whole('rope-dim', 'r'), base: number('rope-base', 'θ'), layout: $('rope-layout').value } : null,
    shift: field('shift', () => parseWhole($('shift').value, { name: 'k', min: 0, max: 1_000_000 })) ?? 0,
    slidingWindow: whole('window', 'W'),
    softcap: number('softcap', 'c'),
    alibi: $('alibi').checked,
    qkNorm: $('qk-norm').checked,
    sinks: $('sinks').checked,
  };
}

/**
 * X [B, L, E] (and its parts, for text), the key/value input for
 * cross-attention, their labels, and keyPaddingMask [B, Lk] = padding ∪ the
 * keys the user masked. Throws an InputError with `field` when the key/value
 * lines do not fit the batch. Drops masks whose token changed or vanished.
 */
export function buildInput(p, state) {
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

  const { masked } = state;
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

/** Masks or unmasks key j of sequence b (padding and the extra keys stay as they are); true if it changed. */
export function toggleMask(state, b, j) {
  const { input } = state.last;
  if (j >= input.Lk || input.keyPadding[b * input.Lk + j]) return false;
  const id = `${b}:${j}:${input.keyLabels[b][j]}`;
  if (state.masked.has(id)) state.masked.delete(id); else state.masked.add(id);
  return true;
}
