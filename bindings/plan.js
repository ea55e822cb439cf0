// The forward planner: every argument of MultiheadAttention.forward checked
// (read once, own properties only) and turned into the slot writes and
// flags the core runs on. `codes` are the module's own numbers (codes()).
import {
  readTensor, expectDims, checkBoolean, checkEnum, checkInteger, typeError, rangeError,
  shapeString, typedArrayKind, typedLength, product, readDims,
} from './checks.js';

export const FORWARD_OPTIONS = ['keyPaddingMask', 'attnMask', 'isCausal', 'causal', 'positions', 'validLens',
  'needWeights', 'returnHeads', 'returnConcat', 'fullyMaskedRows', 'cache'];
const CAUSAL = [true, false, 'top-left', 'bottom-right'];
const NEED_WEIGHTS = ['none', 'average', 'per-head'];
const FULLY_MASKED_ROWS = ['zero', 'nan'];
const FLOATS = ['Float32Array'];
const MASKS = ['Uint8Array', 'boolean[]', 'Float32Array'];

/**
 * `{ B, Lq, Lk, columns, flags, writes: [[slot, data]], batched,
 * needWeights, returnHeads, returnConcat }` for one call: c is the layer's
 * config, `o` the options as readOptions(options, FORWARD_OPTIONS) read
 * them, `source` null or the call's key/value source other than tensors:
 * `{ kind: 'cache', batch, past }` (positions it holds since its reset) or
 * `{ kind: 'memory', batch, frames }`. The weights and masks then have
 * `columns`: every position since the cache's reset, this call's included,
 * or the memory's frames.
 */
export function planForward(query, key, value, o, c, codes, source) {
  const plan = planQuery(query, c, codes);
  if (source) {
    if (key != null && source.kind === 'cache') throw typeError('key', 'null with a cache (self-attention)', key);
    if (value != null) throw typeError('value', `null with ${source.kind === 'cache' ? 'a cache' : 'a memory'}`, value);
    if (source.batch !== plan.B)
      throw rangeError(source.kind, `a ${source.kind} of the query's batch (${plan.B})`, `one of batch ${source.batch}`);
    plan.Lk = source.kind === 'cache' ? plan.Lq : source.frames;
    plan.columns = source.kind === 'cache' ? source.past + plan.Lq : source.frames;
  } else {
    planKeyValue(plan, key, value, c, codes);
    plan.columns = null;
  }
  planOptions(plan, o, c, codes, source);
  return plan;
}

// The query's checks and shape: the plan of self-attention with no option.
function planQuery(query, c, { slot }) {
  const q = readTensor(query, 'query', FLOATS);
  if (q.dims.length !== 2 && q.dims.length !== 3)
    throw rangeError('query', 'dims [B, Lq, E] or unbatched [Lq, E]', shapeString(q.dims),
      `query must have dims [B, Lq, E] or unbatched [Lq, E], got ${shapeString(q.dims)}`);
  const batched = q.dims.length === 3;
  const B = batched ? q.dims[0] : 1, Lq = q.dims[batched ? 1 : 0], E = q.dims[batched ? 2 : 1];
  if (E !== c.embedDim)
    throw rangeError('query', `last dim embedDim=${c.embedDim}`, shapeString(q.dims),
      `query's last dim must be embedDim=${c.embedDim}, got ${shapeString(q.dims)}`);
  return { B, Lq, Lk: Lq, flags: 0, writes: [[slot.query, q.data, typedLength(q.data)]], batched, needWeights: 'none',
    returnHeads: false, returnConcat: false };
}

// key and value, when given; when not, whether the query may stand in.
function planKeyValue(plan, key, value, c, { slot, flag }) {
  const { B, batched } = plan;
  const seq = (name, t, width) => {
    const rank = batched ? 3 : 2;
    const want = batched ? `[B, Lk, ${width}]` : `[Lk, ${width}]`;
    if (t.dims.length !== rank)
      throw rangeError(name, `${rank} dims like query (${want})`, shapeString(t.dims),
        `${name} must have ${rank} dims like query (${want}), got ${shapeString(t.dims)}`);
    const [b, l, w] = batched ? t.dims : [1, ...t.dims];
    if (b !== B) throw rangeError(name, `batch ${B}`, shapeString(t.dims), `${name}'s batch must equal query's (${B}), got ${shapeString(t.dims)}`);
    if (w !== width) throw rangeError(name, `last dim ${width}`, shapeString(t.dims), `${name}'s last dim must be ${width}, got ${shapeString(t.dims)}`);
    return l;
  };
  if (key != null) {
    const k = readTensor(key, 'key', FLOATS);
    plan.Lk = seq('key', k, c.kdim);
    plan.writes.push([slot.key, k.data, typedLength(k.data)]);
    plan.flags |= flag.hasKey;
  } else if (c.kdim !== c.embedDim) {
    throw typeError('key', 'a tensor', key,
      `key is required: kdim=${c.kdim} differs from embedDim=${c.embedDim}, so the query cannot be the key`);
  }
  if (value != null) {
    const v = readTensor(value, 'value', FLOATS);
    const Lv = seq('value', v, c.vdim);
    if (Lv !== plan.Lk)
      throw rangeError('value', `length ${plan.Lk}`, shapeString(v.dims), `value's length must equal key's (${plan.Lk}), got ${shapeString(v.dims)}`);
    plan.writes.push([slot.value, v.data, typedLength(v.data)]);
    plan.flags |= flag.hasValue;
  } else if (c.vdim !== (key != null ? c.kdim : c.embedDim)) {
    throw typeError('value', 'a tensor', value, `value is required: vdim=${c.vdim} differs from the key's width`);
  }
}

// An integer tensor (Int32Array or number[] data, or a bare one of those as
// [n]) read once into a fresh Int32Array, each value in [min, max].
function readIntegers(given, name, min, max, maxCount) {
  let data, dims;
  if (Array.isArray(given) || typedArrayKind(given) !== undefined) {
    data = given;
    dims = null;
  } else if (given !== null && typeof given === 'object') {
    data = given.data;
    dims = readDims(given.dims, name);
  } else {
    throw typeError(name, 'an integer array, an Int32Array or a tensor { data, dims }', given);
  }
  const kind = typedArrayKind(data);
  if (!Array.isArray(data) && kind !== 'Int32Array') throw typeError(`${name}.data`, 'an Int32Array or an array of integers', data);
  const n = kind !== undefined ? typedLength(data) : data.length;
  if (!(n <= maxCount)) throw rangeError(name, `at most ${maxCount} values (the call's queries)`, `${n} values`);
  const values = new Int32Array(n);
  for (let i = 0; i < n; i++) values[i] = checkInteger(data[i], `${name}[${i}]`, { min, max });
  if (dims === null) dims = [n];
  if (n !== product(dims))
    throw rangeError(`${name}.data`, `${product(dims)} values`, `${n} values`, `${name}.data has ${n} values but dims ${shapeString(dims)} need ${product(dims)}`);
  return { data: values, dims };
}

// validLens as a number, an integer array, an Int32Array or a tensor, read
// once into an Int32Array. Lengths past Lk mean "every key": they are
// written as Lk, so that no length wraps around in 32 bits.
function readValidLens(given, Lk, maxCount) {
  let data, dims;
  if (typeof given === 'number') {
    data = [given];
    dims = [];
  } else if (Array.isArray(given) || typedArrayKind(given) !== undefined) {
    data = given;
    dims = null;
  } else if (given !== null && typeof given === 'object') {
    data = given.data;
    dims = readDims(given.dims, 'validLens');
  } else {
    throw typeError('validLens', 'an integer array or a tensor { data, dims }', given);
  }
  const kind = typedArrayKind(data);
  if (!Array.isArray(data) && kind !== 'Int32Array')
    throw typeError('validLens.data', 'an Int32Array or an array of integers', data);
  const n = kind !== undefined ? typedLength(data) : data.length;
  if (!(n <= maxCount)) throw rangeError('validLens', `at most ${maxCount} values (one per query)`, `${n} values`);
  const lens = new Int32Array(n);
  for (let i = 0; i < n; i++) lens[i] = Math.min(checkInteger(data[i], `validLens[${i}]`, { max: Number.MAX_SAFE_INTEGER }), Lk);
  if (dims === null) dims = [n];
  if (n !== product(dims))
    throw rangeError('validLens.data', `${product(dims)} values`, `${n} values`,
      `validLens.data has ${n} values but dims ${shapeString(dims)} need ${product(dims)}`);
  return { data: lens, dims };
}

// The options: masks, weights, extra outputs, the fully-masked policy.
function planOptions(plan, o, c, { slot, flag }, source) {
  const { B, Lq, batched, writes } = plan;
  const Lk = plan.columns ?? plan.Lk;  // the masks' columns
  const H = c.numHeads;
  const lead = batched ? [B] : [];
  let flags = 0;
  if (o.keyPaddingMask != null) {
    const m = readTensor(o.keyPaddingMask, 'keyPaddingMask', MASKS);
    expectDims(m.dims, [...lead, Lk], 'keyPaddingMask', batched ? '[B, Lk]' : '[Lk]');
    const additive = m.kind === 'Float32Array';
    writes.push([additive ? slot.keyPaddingAdditive : slot.keyPaddingBlocked, m.data, typedLength(m.data)]);
    flags |= additive ? flag.keyPaddingAdditive : flag.keyPaddingBlocked;
  }
  if (o.attnMask != null) {
    const m = readTensor(o.attnMask, 'attnMask', MASKS);
    const shapes = `[Lq, Lk], ${batched ? '[B * numHeads, Lq, Lk], [B, 1, Lq, Lk] or [B, numHeads, Lq, Lk]' : '[numHeads, Lq, Lk]'}`;
    if (m.dims.length === 4 && batched) {  // Hugging Face's [B, 1, Lq, Lk], or one per head
      expectDims(m.dims, [B, m.dims[1] === 1 ? 1 : H, Lq, Lk], 'attnMask', shapes);
      flags |= m.dims[1] === 1 && H !== 1 ? flag.attnPerBatch : flag.attnPerHead;
    } else if (m.dims.length === 3) {
      expectDims(m.dims, [B * H, Lq, Lk], 'attnMask', batched ? '[B * numHeads, Lq, Lk], index b * numHeads + h' : '[numHeads, Lq, Lk]');
      flags |= flag.attnPerHead;
    } else {
      expectDims(m.dims, [Lq, Lk], 'attnMask', shapes);
    }
    const additive = m.kind === 'Float32Array';
    writes.push([additive ? slot.attnAdditive : slot.attnBlocked, m.data, typedLength(m.data)]);
    flags |= additive ? flag.attnAdditive : flag.attnBlocked;
  }
  // causal: true (top-left, as torch.tril) or 'bottom-right' (the last
  // query sees every key); isCausal is nn.MultiheadAttention's spelling of true.
  if (o.isCausal !== undefined && o.causal !== undefined)
    throw typeError('causal', 'given once (isCausal is its nn.MultiheadAttention spelling)', 'both causal and isCausal');
  const causal = o.causal !== undefined ? checkEnum(o.causal, 'causal', CAUSAL)
    : o.isCausal !== undefined ? checkBoolean(o.isCausal, 'isCausal') : source?.kind === 'cache';
  if (source?.kind === 'cache' && causal === false)
    throw rangeError('causal', 'true with a cache (a decoder\'s keys are its earlier tokens)', 'false');
  if (source?.kind === 'memory' && causal !== false)
    throw rangeError('causal', 'false over an encoder memory (every frame is visible)', String(causal));
  if (causal !== false) flags |= flag.isCausal;
  if (causal === 'bottom-right') flags |= flag.bottomRight;
  if (o.validLens != null && source) throw typeError('validLens', `absent with a ${source.kind}`, o.validLens);
  if (o.positions != null) {
    if (plan.flags & (flag.hasKey | flag.hasValue) || source?.kind === 'memory')
      throw typeError('positions', 'absent in cross-attention (positions are those of self-attention\'s tokens)', o.positions);
    const p = readIntegers(o.positions, 'positions', -(2 ** 31), 2 ** 31 - 1, B * Lq);
    expectDims(p.dims, [...lead, Lq], 'positions', batched ? '[B, Lq]' : '[Lq]');
    writes.push([slot.positions, p.data, typedLength(p.data)]);
    flags |= flag.hasPositions;
  }
  if (o.validLens != null) {
    const t = readValidLens(o.validLens, Lk, Math.max(B * Lq, B, 1));
    const dims = t.dims;
    const perBatch = batched ? dims.length === 1 && dims[0] === B : dims.length === 0;
    const perQuery = batched ? dims.length === 2 && dims[0] === B && dims[1] === Lq : dims.length === 1 && dims[0] === Lq;
    if (!perBatch && !perQuery) {
      const want = batched ? `[${B}] (per sequence) or [${B}, ${Lq}] (per query)` : `[] (one length) or [${Lq}] (per query)`;
      throw rangeError('validLens', `dims ${want}`, shapeString(dims), `validLens must have dims ${want}, got ${shapeString(dims)}`);
    }
    writes.push([slot.validLens, t.data, typedLength(t.data)]);
    flags |= perQuery ? flag.validLensPerQuery : flag.validLensPerBatch;
  }
  const needWeights = o.needWeights === undefined ? 'none' : checkEnum(o.needWeights, 'needWeights', NEED_WEIGHTS);
  if (needWeights === 'average') flags |= flag.weightsAverage;
  if (needWeights === 'per-head') flags |= flag.weightsPerHead;
  const returnHeads = o.returnHeads === undefined ? false : checkBoolean(o.returnHeads, 'returnHeads');
  const returnConcat = o.returnConcat === undefined ? false : checkBoolean(o.returnConcat, 'returnConcat');
  if (returnHeads) flags |= flag.wantHeads;
  if (returnConcat) flags |= flag.wantConcat;
  const fully = o.fullyMaskedRows === undefined ? 'zero' : checkEnum(o.fullyMaskedRows, 'fullyMaskedRows', FULLY_MASKED_ROWS);
  if (fully === 'nan') flags |= flag.fullyMaskedNaN;
  plan.flags |= flags;
  Object.assign(plan, { needWeights, returnHeads, returnConcat });
}

