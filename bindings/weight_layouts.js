// The attention weight layouts people have, turned into the one this library
// loads: PyTorch nn.MultiheadAttention's state_dict.
//
//   layout  keys under the prefix                                  becomes
//   torch   in_proj_weight | q/k/v_proj_weight, in_proj_bias,       itself
//           bias_k, bias_v, out_proj.weight, out_proj.bias
//   bert    self.{query,key,value}.{weight,bias},                   in_proj_* = rows of q, k, v stacked;
//           output.dense.{weight,bias} (Hugging Face BERT)           out_proj.* = output.dense.*
//   gpt2    c_attn.{weight,bias}, c_proj.{weight,bias}              Conv1D stores [in, out]: the
//           (Hugging Face GPT-2)                                     weights are transposed
//
// BERT's output LayerNorm and residual, and GPT-2's causal mask, are not part
// of the layer: apply the LayerNorm yourself, pass isCausal: true for GPT-2.
//
// Every shape is checked here, before a layer is made: each weight 2-D, each
// bias 1-D (bias_k/bias_v [1, 1, E]), and all of them agreeing on E; a
// refusal is a RangeError naming the tensors that disagree. Keys are looked
// up as own entries only: a tensor named 'constructor' or '__proto__' is
// just a name, and nothing inherited stands in for a missing key.

import { rangeError, shapeString } from './checks.js';
import { quoteName } from './safetensors.js';

export const LAYOUTS = ['torch', 'bert', 'gpt2'];

const SIGNATURES = {
  torch: ['out_proj.weight'],
  bert: ['self.query.weight', 'self.key.weight', 'self.value.weight', 'output.dense.weight'],
  gpt2: ['c_attn.weight', 'c_proj.weight'],
};

function transpose({ data, dims: [rows, cols] }) {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return { data: out, dims: [cols, rows] };
}

function concatRows(parts) {
  const data = new Float32Array(parts.reduce((n, p) => n + p.data.length, 0));
  let at = 0;
  for (const p of parts) { data.set(p.data, at); at += p.data.length; }
  return { data, dims: [parts.reduce((n, p) => n + p.dims[0], 0), ...parts[0].dims.slice(1)] };
}

// dims equal to `want`, whose null entries match any size.
const fits = (dims, want) => dims.length === want.length && want.every((w, i) => w === null || dims[i] === w);
const pattern = (want) => shapeString(want.map((w) => (w === null ? '*' : w)));
// dims for a message: all of them up to 8 (a file may give a tensor thousands).
const dimsText = (dims) => (dims.length <= 8 ? shapeString(dims) : `[${dims.slice(0, 8).join(', ')}, … (${dims.length} dims)]`);

/**
 * Converts `tensors` (name -> { data, dims }) of one attention layer under
 * `prefix` to a PyTorch state_dict plus the layer options its shapes imply.
 * `layout` 'auto' recognises the layout by its key names.
 */
export function toStateDict(tensors, { prefix = '', layout = 'auto' } = {}) {
  const under = Object.create(null);
  for (const name of Object.keys(tensors)) if (name.startsWith(prefix)) under[name.slice(prefix.length)] = tensors[name];
  const has = (key) => Object.hasOwn(under, key);
  const found = Object.keys(under);
  const listing = () => (found.length ? found.slice(0, 20).map((k) => quoteName(k).slice(1, -1)).join(', ') + (found.length > 20 ? ', …' : '') : 'none');
  const full = (key) => quoteName(prefix + key);
  const refuse = (key, expected, actual, message) => rangeError(prefix + key, expected, actual, `safetensors: ${message}`);

  if (layout === 'auto') {
    layout = LAYOUTS.find((l) => SIGNATURES[l].every(has));
    if (layout === undefined)
      throw rangeError('prefix', 'the keys of an attention layer', listing(), `safetensors: no attention layer recognised under prefix ${quoteName(prefix)}: ` +
        `expected the keys of nn.MultiheadAttention (out_proj.weight, in_proj_weight, …), BERT (self.query.weight, …, output.dense.weight) ` +
        `or GPT-2 (c_attn.weight, c_proj.weight); keys found there: ${listing()}`);
  } else if (!LAYOUTS.includes(layout)) {
    throw rangeError('layout', `one of 'auto', ${LAYOUTS.map((l) => `'${l}'`).join(', ')}`, String(layout),
      `safetensors: layout must be one of 'auto', ${LAYOUTS.map((l) => `'${l}'`).join(', ')}, got ${JSON.stringify(String(layout))}`);
  }

  const need = (key) => {
    if (!has(key))
      throw refuse(key, 'present', 'missing', `layout '${layout}' needs ${full(key)}, which is missing; keys under the prefix: ${listing()}`);
    return under[key];
  };
  // A tensor of `rank` dims, none of them 0.
  const ofRank = (key, rank, what) => {
    const t = need(key);
    if (t.dims.length !== rank)
      throw refuse(key, `${rank}-D ${what}`, dimsText(t.dims), `${full(key)} must be ${rank}-D (${what}), got dims ${dimsText(t.dims)}`);
    if (t.dims.includes(0))
      throw refuse(key, `${what} with no empty dim`, dimsText(t.dims), `${full(key)} has dims ${dimsText(t.dims)}; an attention layer has no empty dims`);
    return t;
  };
  const matrix = (key, what = 'a weight [out, in]') => ofRank(key, 2, what);
  const vector = (key, what = 'a bias') => ofRank(key, 1, what);
  // `key`'s dims must be `want`, which the dims of `ref` (E = `e`) imply.
  const agree = (key, want, ref, e) => {
    const { dims } = under[key];
    if (!fits(dims, want))
      throw refuse(key, pattern(want), dimsText(dims),
        `${full(key)} has dims ${dimsText(dims)} but ${full(ref)} has ${dimsText(under[ref].dims)}: ` +
        `with E = ${e} from ${full(ref)}, ${full(key)} must be ${pattern(want)}`);
  };
  // Keys that come all together or not at all; whether they are there.
  const allOrNone = (keys, why) => {
    const present = keys.filter(has);
    if (present.length > 0 && present.length < keys.length) {
      const missing = keys.filter((k) => !has(k));
      throw refuse(missing[0], 'present', 'missing',
        `${present.map(full).join(', ')} ${present.length > 1 ? 'are' : 'is'} present but ${missing.map(full).join(', ')} ${missing.length > 1 ? 'are' : 'is'} missing: ${why}`);
    }
    return present.length > 0;
  };

  if (layout === 'torch') {
    const out = matrix('out_proj.weight', 'the output projection [E, E]');
    const E = out.dims[0];
    if (out.dims[1] !== E)
      throw refuse('out_proj.weight', `[${E}, ${E}]`, dimsText(out.dims),
        `${full('out_proj.weight')} must be square [E, E] (the output projection), got dims ${dimsText(out.dims)}`);
    const stateDict = {};
    let kdim = E, vdim = E;
    const separate = ['q_proj_weight', 'k_proj_weight', 'v_proj_weight'];
    if (has('in_proj_weight')) {
      const also = separate.filter(has);
      if (also.length > 0)
        throw refuse(also[0], 'absent', 'present', `${full('in_proj_weight')} and ${also.map(full).join(', ')} are both present: ` +
          'nn.MultiheadAttention has either in_proj_weight or q/k/v_proj_weight');
      matrix('in_proj_weight', 'q, k and v projections stacked [3E, E]');
      agree('in_proj_weight', [3 * E, E], 'out_proj.weight', E);
      stateDict.in_proj_weight = under.in_proj_weight;
    } else {
      const [q, k, v] = separate.map((key) => matrix(key));
      agree('q_proj_weight', [E, E], 'out_proj.weight', E);
      agree('k_proj_weight', [E, null], 'out_proj.weight', E);
      agree('v_proj_weight', [E, null], 'out_proj.weight', E);
      [kdim, vdim] = [k.dims[1], v.dims[1]];
      // The layer fuses them when kdim = vdim = E, as PyTorch does.
      if (kdim === E && vdim === E) stateDict.in_proj_weight = concatRows([q, k, v]);
      else Object.assign(stateDict, { q_proj_weight: q, k_proj_weight: k, v_proj_weight: v });
    }
    const bias = allOrNone(['in_proj_bias', 'out_proj.bias'], 'nn.MultiheadAttention has both biases or neither');
    if (bias) {
      vector('in_proj_bias', 'the q, k and v biases stacked [3E]');
      agree('in_proj_bias', [3 * E], 'out_proj.weight', E);
      vector('out_proj.bias', 'the output bias [E]');
      agree('out_proj.bias', [E], 'out_proj.weight', E);
      Object.assign(stateDict, { in_proj_bias: under.in_proj_bias, 'out_proj.bias': under['out_proj.bias'] });
    }
    const addBiasKV = allOrNone(['bias_k', 'bias_v'], 'add_bias_kv gives both or neither');
    if (addBiasKV) {
      for (const key of ['bias_k', 'bias_v']) {
        ofRank(key, 3, 'a bias [1, 1, E]');
        agree(key, [1, 1, E], 'out_proj.weight', E);
        stateDict[key] = under[key];
      }
    }
    stateDict['out_proj.weight'] = out;
    return { layout, stateDict, options: { embedDim: E, kdim, vdim, bias, addBiasKV } };
  }

  if (layout === 'bert') {
    const names = ['self.query', 'self.key', 'self.value', 'output.dense'];
    const [q, k, v, o] = names.map((n) => matrix(`${n}.weight`));
    const E = q.dims[0];
    if (q.dims[1] !== E)
      throw refuse('self.query.weight', `[${E}, ${E}]`, dimsText(q.dims),
        `${full('self.query.weight')} must be square [E, E] (all heads together as wide as the hidden state), got dims ${dimsText(q.dims)}`);
    agree('self.key.weight', [E, null], 'self.query.weight', E);
    agree('self.value.weight', [E, null], 'self.query.weight', E);
    agree('output.dense.weight', [E, E], 'self.query.weight', E);
    const bias = allOrNone(names.map((n) => `${n}.bias`), 'the layer has all four biases or none');
    const biases = [];
    if (bias) {
      for (const n of names) {
        biases.push(vector(`${n}.bias`));
        agree(`${n}.bias`, [E], `${n}.weight`, E);
      }
    }
    const stateDict = {};
    if (k.dims[1] === E && v.dims[1] === E) {
      stateDict.in_proj_weight = concatRows([q, k, v]);
    } else {
      Object.assign(stateDict, { q_proj_weight: q, k_proj_weight: k, v_proj_weight: v });
    }
    if (bias) stateDict.in_proj_bias = concatRows(biases.slice(0, 3));
    stateDict['out_proj.weight'] = o;
    if (bias) stateDict['out_proj.bias'] = biases[3];
    return { layout, stateDict, options: { embedDim: E, kdim: k.dims[1], vdim: v.dims[1], bias, addBiasKV: false } };
  }

  // gpt2: Conv1D computes x . W + b with W [in, out]; nn.Linear wants [out, in].
  const cAttn = matrix('c_attn.weight', 'a Conv1D weight [E, 3E]');
  const E = cAttn.dims[0];
  if (cAttn.dims[1] !== 3 * E)
    throw refuse('c_attn.weight', `[${E}, ${3 * E}]`, dimsText(cAttn.dims),
      `${full('c_attn.weight')} must be [E, 3E] (a Conv1D weight [in, out]: q, k and v side by side), got dims ${dimsText(cAttn.dims)}`);
  const cProj = matrix('c_proj.weight', 'a Conv1D weight [E, E]');
  agree('c_proj.weight', [E, E], 'c_attn.weight', E);
  const bias = allOrNone(['c_attn.bias', 'c_proj.bias'], 'the layer has both biases or neither');
  if (bias) {
    vector('c_attn.bias');
    agree('c_attn.bias', [3 * E], 'c_attn.weight', E);
    vector('c_proj.bias');
    agree('c_proj.bias', [E], 'c_attn.weight', E);
  }
  const stateDict = { in_proj_weight: transpose(cAttn), 'out_proj.weight': transpose(cProj) };
  if (bias) Object.assign(stateDict, { in_proj_bias: under['c_attn.bias'], 'out_proj.bias': under['c_proj.bias'] });
  return { layout, stateDict, options: { embedDim: E, kdim: E, vdim: E, bias, addBiasKV: false } };
}
