// The public API's behaviour: defaults, state dicts, argument defaults,
// batched/unbatched shapes, mask equivalences, ownership of results, lifetime.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { MultiheadAttention, Tensor, capabilities, version, randomTensor } from './helpers.js';
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));

test('version is the package.json version', () => {
  assert.equal(version, pkg.version);
});

test('create applies PyTorch defaults', async () => {
  const mha = await MultiheadAttention.create({ embedDim: 12, numHeads: 3 });
  assert.deepEqual(
    [mha.embedDim, mha.numHeads, mha.headDim, mha.kdim, mha.vdim, mha.bias, mha.addBiasKV, mha.addZeroAttn],
    [12, 3, 4, 12, 12, true, false, false]);
  assert.deepEqual(mha.parameterShapes(), {
    in_proj_weight: [36, 12], in_proj_bias: [36], 'out_proj.weight': [12, 12], 'out_proj.bias': [12],
  });
  mha.dispose();
});

test('separate projection weights appear when kdim or vdim differ, bias_k/bias_v with addBiasKV', async () => {
  const mha = await MultiheadAttention.create({ embedDim: 8, numHeads: 2, kdim: 3, vdim: 5, bias: false, addBiasKV: true });
  assert.deepEqual(mha.parameterShapes(), {
    q_proj_weight: [8, 8], k_proj_weight: [8, 3], v_proj_weight: [8, 5],
    bias_k: [1, 1, 8], bias_v: [1, 1, 8], 'out_proj.weight': [8, 8],
  });
  mha.dispose();
});

test('initial weights are deterministic per seed and follow PyTorch\'s distributions', async () => {
  const a = await MultiheadAttention.create({ embedDim: 32, numHeads: 4, seed: 7 });
  const b = await MultiheadAttention.create({ embedDim: 32, numHeads: 4, seed: 7 });
  const c = await MultiheadAttention.create({ embedDim: 32, numHeads: 4, seed: 8 });
  const sa = a.stateDict(), sb = b.stateDict(), sc = c.stateDict();
  assert.deepEqual(sa.in_proj_weight.data, sb.in_proj_weight.data);
  assert.notDeepEqual(sa.in_proj_weight.data, sc.in_proj_weight.data);
  const maxAbs = (t) => t.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const xavier = Math.sqrt(6 / (32 + 96));  // xavier_uniform_ on [3E, E]
  assert.ok(maxAbs(sa.in_proj_weight) <= xavier && maxAbs(sa.in_proj_weight) > 0.9 * xavier);
  assert.ok(maxAbs(sa['out_proj.weight']) <= 1 / Math.sqrt(32));  // nn.Linear's kaiming_uniform_(a=sqrt 5)
  assert.equal(maxAbs(sa.in_proj_bias), 0);
  assert.equal(maxAbs(sa['out_proj.bias']), 0);
  for (const m of [a, b, c]) m.dispose();
});

test('stateDict round-trips through loadStateDict and gives the same outputs', async () => {
  const a = await MultiheadAttention.create({ embedDim: 12, numHeads: 3, seed: 1 });
  const b = await MultiheadAttention.create({ embedDim: 12, numHeads: 3, seed: 2 });
  const x = randomTensor([2, 5, 12], 3);
  assert.notDeepEqual(a.forward(x).output.data, b.forward(x).output.data);
  b.loadStateDict(a.stateDict());  // tensors with dims are accepted
  assert.deepEqual(b.forward(x).output.data, a.forward(x).output.data);
  const plain = Object.fromEntries(Object.entries(a.stateDict()).map(([k, t]) => [k, t.data]));
  b.loadStateDict(plain);          // bare Float32Arrays too
  assert.deepEqual(b.forward(x).output.data, a.forward(x).output.data);
  a.dispose(); b.dispose();
});

test('loadStateDict names every missing, unexpected and misshapen key at once, and loads nothing then', async () => {
  const mha = await MultiheadAttention.create({ embedDim: 4, numHeads: 2, seed: 1 });
  const before = mha.stateDict();
  assert.throws(() => mha.loadStateDict({
    in_proj_weight: new Float32Array(48).fill(1),        // right
    in_proj_bias: new Float32Array(5),                   // misshapen
    'out_proj.wieght': new Float32Array(16),             // unexpected
  }), (err) => {
    assert.ok(err instanceof RangeError);
    for (const fragment of ["'in_proj_bias' must have 12 values (shape [12]), got 5", "unexpected key 'out_proj.wieght'",
      "missing key 'out_proj.weight'", "missing key 'out_proj.bias'"])
      assert.ok(err.message.includes(fragment), `${err.message}\n lacks: ${fragment}`);
    return true;
  });
  assert.deepEqual(mha.stateDict().in_proj_weight.data, before.in_proj_weight.data, 'nothing was loaded');
  assert.throws(() => mha.loadStateDict({ 'out_proj.bias': { data: new Float32Array(4), dims: [2, 2] } }, { strict: false }),
    /'out_proj.bias' must have dims \[4\], got \[2, 2\]/);
  mha.loadStateDict({ 'out_proj.bias': new Float32Array([1, 2, 3, 4]) }, { strict: false });
  assert.deepEqual(Array.from(mha.stateDict()['out_proj.bias'].data), [1, 2, 3, 4]);
  mha.dispose();
});

test('key defaults to the query and value to the key', async () => {
  const mha = await MultiheadAttention.create({ embedDim: 8, numHeads: 2, seed: 3 });
  const x = randomTensor([2, 3, 8], 1), y = randomTensor([2, 5, 8], 2);
  assert.deepEqual(mha.forward(x).output.data, mha.forward(x, x, x).output.data);
  assert.deepEqual(mha.forward(x, y).output.data, mha.forward(x, y, y).output.data);
  mha.dispose();
});

test('the plain forward(x) call computes what explicit default options compute, and honours options however given', async () => {
  // forward(x) with no options and with explicit default options are one call.
  for (const config of [{ embedDim: 8, numHeads: 2, seed: 3 }, { embedDim: 12, numHeads: 3, seed: 4, addBiasKV: true, addZeroAttn: true }]) {
    const mha = await MultiheadAttention.create(config);
    const x = randomTensor([2, 5, config.embedDim], 7);
    const plain = mha.forward(x);
    assert.deepEqual(Object.keys(plain), ['output']);
    assert.deepEqual(plain.output.dims, [2, 5, config.embedDim]);
    assert.deepEqual(plain.output.data, mha.forward(x, null, null, { needWeights: 'none' }).output.data);
    assert.deepEqual(plain.output.data, mha.forward(x, undefined, undefined, {}).output.data);
    const one = { data: x.data.subarray(0, 5 * config.embedDim), dims: [5, config.embedDim] };  // unbatched
    assert.deepEqual(mha.forward(one).output.data, mha.forward(one, null, null, { needWeights: 'none' }).output.data);
    // Own options are honoured, enumerable or not; inherited ones never are
    // (Object.prototype.isCausal = true must not make every call causal).
    const causal = mha.forward(x, null, null, { isCausal: true }).output.data;
    assert.notDeepEqual(causal, plain.output.data);
    assert.deepEqual(mha.forward(x, null, null, Object.create({ isCausal: true })).output.data, plain.output.data);
    assert.deepEqual(mha.forward(x, null, null, Object.defineProperty({}, 'isCausal', { value: true })).output.data, causal);
    // And anything the checks refuse is refused the same way.
    assert.throws(() => mha.forward(x, null, null, { isCasual: true }), /unknown option 'isCasual'; did you mean 'isCausal'/);
    assert.throws(() => mha.forward({ data: x.data, dims: [2, 5, config.embedDim + 1] }), RangeError);
    assert.throws(() => mha.forward({ data: x.data, dims: [2.5, 2, config.embedDim] }), TypeError);
    assert.throws(() => mha.forward(x, null, null, []), TypeError);
    mha.dispose();
  }
});

test('unbatched inputs give unbatched results equal to a batch of one', async () => {
  const mha = await MultiheadAttention.create({ embedDim: 9, numHeads: 3, seed: 4 });
  const x = randomTensor([5, 9], 1);
  const opts = { needWeights: 'per-head', returnHeads: true, returnConcat: true, isCausal: true };
  const u = mha.forward(x, null, null, opts);
  const b = mha.forward({ data: x.data, dims: [1, 5, 9] }, null, null, opts);
  assert.deepEqual(u.output.dims, [5, 9]);
  assert.deepEqual(u.weights.dims, [3, 5, 5]);
  assert.deepEqual(u.heads.dims, [3, 5, 3]);
  assert.deepEqual(u.concat.dims, [5, 9]);
  for (const part of ['output', 'weights', 'heads', 'concat']) assert.deepEqual(u[part].data, b[part].data);
  mha.dispose();
});

test('weights are returned only when asked for, averaged or per head', async () => {
  const mha = await MultiheadAttention.create({ embedDim: 8, numHeads: 4, seed: 5, addZeroAttn: true });
  const x = randomTensor([2, 3, 8], 1);
  const none = mha.forward(x);
  assert.deepEqual(Object.keys(none), ['output']);
  const avg = mha.forward(x, null, null, { needWeights: 'average' }).weights;
  const per = mha.forward(x, null, null, { needWeights: 'per-head' }).weights;
  assert.deepEqual(avg.dims, [2, 3, 4]);  // S = L + 1 zero-attention key
  assert.deepEqual(per.dims, [2, 4, 3, 4]);
  for (let b = 0; b < 2; b++)
    for (let i = 0; i < 3; i++)
      for (let j = 0; j < 4; j++) {
        let mean = 0;
        for (let h = 0; h < 4; h++) mean += per.data[((b * 4 + h) * 3 + i) * 4 + j] / 4;
        assert.ok(Math.abs(mean - avg.data[(b * 3 + i) * 4 + j]) < 1e-6);
      }
  mha.dispose();
});

test('boolean[] masks equal Uint8Array masks, and isCausal equals the explicit triangle', async () => {
  const mha = await MultiheadAttention.create({ embedDim: 8, numHeads: 2, seed: 6 });
  const x = randomTensor([2, 4, 8], 1);
  const kpmBool = [false, true, false, false, true, false, false, false];
  const a = mha.forward(x, null, null, { keyPaddingMask: { data: kpmBool, dims: [2, 4] } });
  const b = mha.forward(x, null, null, { keyPaddingMask: { data: Uint8Array.from(kpmBool, Number), dims: [2, 4] } });
  assert.deepEqual(a.output.data, b.output.data);
  const tri = new Uint8Array(16).map((_, n) => (n % 4 > Math.floor(n / 4) ? 1 : 0));
  const c = mha.forward(x, null, null, { isCausal: true });
  const d = mha.forward(x, null, null, { attnMask: { data: tri, dims: [4, 4] } });
  assert.deepEqual(c.output.data, d.output.data);
  mha.dispose();
});

test('validLens equals the key padding mask it describes (d2l.ai semantics)', async () => {
  const mha = await MultiheadAttention.create({ embedDim: 8, numHeads: 2, seed: 7 });
  const q = randomTensor([2, 3, 8], 1), kv = randomTensor([2, 5, 8], 2);
  const a = mha.forward(q, kv, kv, { validLens: [2, 4] });
  const mask = Uint8Array.from({ length: 10 }, (_, n) => (n % 5 >= [2, 4][Math.floor(n / 5)] ? 1 : 0));
  const b = mha.forward(q, kv, kv, { keyPaddingMask: { data: mask, dims: [2, 5] } });
  assert.deepEqual(a.output.data, b.output.data);
  const perQuery = mha.forward(q, kv, kv, { validLens: { data: new Int32Array([2, 2, 2, 4, 4, 4]), dims: [2, 3] } });
  assert.deepEqual(perQuery.output.data, a.output.data);
  mha.dispose();
});

test('results are fresh arrays the caller owns: later calls and heap growth leave them intact', async () => {
  const mha = await MultiheadAttention.create({ embedDim: 16, numHeads: 4, seed: 8 });
  const x = randomTensor([1, 4, 16], 1);
  const first = mha.forward(x, null, null, { needWeights: 'average', returnHeads: true });
  const copy = Float32Array.from(first.output.data);
  first.output.data[0] = 12345;  // writing to a result touches nothing inside
  const again = mha.forward(x);
  assert.deepEqual(again.output.data, copy);
  mha.forward(randomTensor([4, 2048, 16], 2), null, null, { needWeights: 'per-head' });  // grows the heap
  assert.equal(first.output.data[0], 12345);
  assert.deepEqual(first.output.data.subarray(1), copy.subarray(1));
  assert.ok(!(first.output.data.buffer instanceof SharedArrayBuffer));
  mha.dispose();
});

test('dispose frees the layer: a second dispose does nothing, any other use throws', async () => {
  const mha = await MultiheadAttention.create({ embedDim: 4, numHeads: 1 });
  mha.dispose();
  assert.equal(mha.disposed, true);
  assert.doesNotThrow(() => mha.dispose());
  for (const call of [() => mha.forward(randomTensor([2, 4])), () => mha.stateDict(),
    () => mha.loadStateDict({}), () => mha.parameterShapes()])
    assert.throws(call, /this layer was disposed; create a new one/);
  // What `using` calls at the end of its block (Node 20 has the symbol, not yet the syntax).
  const scoped = await MultiheadAttention.create({ embedDim: 4, numHeads: 1 });
  assert.equal(scoped.disposed, false);
  scoped[Symbol.dispose]();
  assert.equal(scoped.disposed, true);
});

test('MultiheadAttention cannot be constructed with new', () => {
  assert.throws(() => new MultiheadAttention(), /use `await MultiheadAttention.create\(options\)`/);
});

test('capabilities say which build runs and why', async () => {
  await MultiheadAttention.create({ embedDim: 4, numHeads: 1 }).then((m) => m.dispose());
  const caps = capabilities();
  assert.equal(caps.simd, true);
  assert.equal(typeof caps.reason, 'string');
  assert.equal(caps.version, version);
  assert.ok(caps.loadedFrom);
});

test('Tensor is a plain { data, dims } holder', () => {
  const t = new Tensor(new Float32Array(6), [2, 3]);
  assert.equal(t.size, 6);
  assert.deepEqual(t.dims, [2, 3]);
});
