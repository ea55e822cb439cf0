// The layer the page runs, made through the package and kept while its
// configuration stays the same (creating one awaits; forward passes do not).
// A failure is routed to the form field of the argument the package names
// (its errors carry `err.argument`), never by reading the message.

/** A failure that belongs next to one form field. */
export class FieldError extends Error {
  constructor(field, message) { super(message); this.field = field; }
}

// The package's argument names → the page's field ids. Options with no field
// of their own (a checkbox) share the decoder block's message line.
const FIELD_OF_ARGUMENT = {
  embedDim: 'E', numHeads: 'h', seed: 'seed', numKVHeads: 'kv-heads', headDim: 'head-dim', scale: 'scale',
  'rope.dim': 'rope-dim', 'rope.base': 'rope-base', slidingWindow: 'window', softcap: 'softcap', positions: 'shift',
  rope: 'decoder', alibi: 'decoder', qkNorm: 'decoder', sinks: 'decoder', weightNames: 'decoder', addBiasKV: 'decoder', addZeroAttn: 'decoder',
};

/** The form field a package error is about, or null when it is about no one field. */
export const fieldOfError = (err) => FIELD_OF_ARGUMENT[err?.argument] ?? null;

/** MultiheadAttention.create's options for the page's parameters: only the decoder options given. */
export function createOptions(p) {
  const o = {
    embedDim: p.E, numHeads: p.h, bias: p.bias, addBiasKV: p.addBiasKV, addZeroAttn: p.addZeroAttn,
    seed: p.weights === 'seeded' ? p.seed : 0,
  };
  const d = p.decoder;
  if (d.numKVHeads != null) o.numKVHeads = d.numKVHeads;
  if (d.headDim != null) o.headDim = d.headDim;
  if (d.scale != null) o.scale = d.scale;
  if (d.rope) {
    o.rope = { layout: d.rope.layout };
    if (d.rope.dim != null) o.rope.dim = d.rope.dim;
    if (d.rope.base != null) o.rope.base = d.rope.base;
  }
  if (d.slidingWindow != null) o.slidingWindow = d.slidingWindow;
  if (d.softcap != null) o.softcap = d.softcap;
  if (d.alibi) o.alibi = true;
  if (d.qkNorm) o.qkNorm = true;
  if (d.sinks) o.sinks = true;
  return o;
}

/** The identity of the layer a parameter set needs. */
export function layerKeyOf(state, p) {
  if (p.weights === 'checkpoint') return `checkpoint#${state.checkpoint.version}`;
  const source = p.weights === 'file' ? `file#${state.stateFile.version}` : 'seeded';
  return JSON.stringify([createOptions(p), source]);
}

/** The layer for `p`: the checkpoint's, the kept one when its key is the same, else a new one (the old one disposed). */
export async function ensureLayer(state, p, { MultiheadAttention }) {
  if (p.weights === 'checkpoint') return state.checkpoint.mha;
  const key = layerKeyOf(state, p);
  if (state.layer.mha && key === state.layer.key) return state.layer.mha;
  let mha;
  try {
    mha = await MultiheadAttention.create(createOptions(p));
  } catch (err) {
    const field = fieldOfError(err);
    throw field ? new FieldError(field, err.message) : err;
  }
  if (p.weights === 'file') {
    try {
      mha.loadStateDict(state.stateFile.dict);
    } catch (err) {
      mha.dispose();
      // The package's own message: it names every missing, unexpected or misshapen key.
      throw new FieldError('state-file', `${err.message} — set E, h, bias and add_bias_kv to match the layer this file came from.`);
    }
  }
  state.layer.mha?.dispose();
  state.layer = { mha, key };
  return mha;
}
