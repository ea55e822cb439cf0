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

/**
 * Converts `tensors` (name -> { data, dims }) of one attention layer under
 * `prefix` to a PyTorch state_dict plus the layer options its shapes imply.
 * `layout` 'auto' recognises the layout by its key names.
 */
export function toStateDict(tensors, { prefix = '', layout = 'auto' } = {}) {
  const under = Object.fromEntries(Object.entries(tensors)
    .filter(([name]) => name.startsWith(prefix)).map(([name, t]) => [name.slice(prefix.length), t]));
  const found = Object.keys(under);
  const listing = () => (found.length ? found.slice(0, 20).join(', ') + (found.length > 20 ? ', …' : '') : 'none');
  if (layout === 'auto') {
    layout = LAYOUTS.find((l) => SIGNATURES[l].every((k) => k in under));
    if (layout === undefined)
      throw new RangeError(`fromSafetensors: no attention layer recognised under prefix '${prefix}': ` +
        `expected the keys of nn.MultiheadAttention (out_proj.weight, in_proj_weight, …), BERT (self.query.weight, …, output.dense.weight) ` +
        `or GPT-2 (c_attn.weight, c_proj.weight); keys found there: ${listing()}`);
  } else if (!LAYOUTS.includes(layout)) {
    throw new RangeError(`fromSafetensors: layout must be one of 'auto', ${LAYOUTS.map((l) => `'${l}'`).join(', ')}, got ${JSON.stringify(layout)}`);
  }
  const need = (key) => {
    if (!(key in under)) throw new RangeError(`fromSafetensors: layout '${layout}' needs '${prefix}${key}', which is missing; keys under the prefix: ${listing()}`);
    return under[key];
  };
  const optional = (key) => under[key];

  if (layout === 'torch') {
    const names = ['in_proj_weight', 'q_proj_weight', 'k_proj_weight', 'v_proj_weight', 'in_proj_bias',
      'bias_k', 'bias_v', 'out_proj.weight', 'out_proj.bias'];
    const stateDict = Object.fromEntries(names.filter((n) => n in under).map((n) => [n, under[n]]));
    const out = need('out_proj.weight');
    if (!('in_proj_weight' in under)) ['q_proj_weight', 'k_proj_weight', 'v_proj_weight'].forEach(need);
    const embedDim = out.dims[0];
    return {
      layout, stateDict,
      options: {
        embedDim,
        kdim: under.k_proj_weight ? under.k_proj_weight.dims[1] : embedDim,
        vdim: under.v_proj_weight ? under.v_proj_weight.dims[1] : embedDim,
        bias: 'in_proj_bias' in under,
        addBiasKV: 'bias_k' in under,
      },
    };
  }
  if (layout === 'bert') {
    const [q, k, v, o] = ['self.query', 'self.key', 'self.value', 'output.dense'].map((n) => need(`${n}.weight`));
    const biases = ['self.query', 'self.key', 'self.value', 'output.dense'].map((n) => optional(`${n}.bias`));
    const bias = biases.every(Boolean);
    const stateDict = {};
    if (q.dims[1] === k.dims[1] && k.dims[1] === v.dims[1] && q.dims[1] === q.dims[0]) {
      stateDict.in_proj_weight = concatRows([q, k, v]);
    } else {
      Object.assign(stateDict, { q_proj_weight: q, k_proj_weight: k, v_proj_weight: v });
    }
    if (bias) stateDict.in_proj_bias = concatRows(biases.slice(0, 3));
    stateDict['out_proj.weight'] = o;
    if (bias) stateDict['out_proj.bias'] = biases[3];
    return { layout, stateDict, options: { embedDim: o.dims[0], kdim: k.dims[1], vdim: v.dims[1], bias, addBiasKV: false } };
  }
  // gpt2: Conv1D computes x . W + b with W [in, out]; nn.Linear wants [out, in].
  const cAttn = need('c_attn.weight'), cProj = need('c_proj.weight');
  const bAttn = optional('c_attn.bias'), bProj = optional('c_proj.bias');
  const bias = Boolean(bAttn && bProj);
  const stateDict = { in_proj_weight: transpose(cAttn), 'out_proj.weight': transpose(cProj) };
  if (bias) Object.assign(stateDict, { in_proj_bias: bAttn, 'out_proj.bias': bProj });
  const embedDim = cAttn.dims[0];
  return { layout, stateDict, options: { embedDim, kdim: embedDim, vdim: embedDim, bias, addBiasKV: false } };
}
