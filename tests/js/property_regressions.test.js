// Counterexamples the property-based tests (properties.test.js) found,
// shrunk and written out as named cases: each states one input exactly and
// what the public API must do with it. They prove the same rule as the
// properties: a call either succeeds with well-formed, correct results or
// throws a TypeError/RangeError (a plain Error for a disposed layer) with a
// message; it never retires the WebAssembly module, never computes on data
// other than the caller's, never hangs; and afterwards every other layer
// computes the same bits as before.
//
// Each failed when found and passes since its fix. A counterexample found
// later comes here marked `todo` until fixed.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { MultiheadAttention, memoryStats, capabilities } from '../../dist/index.js';

// Deterministic inputs.
function tensor(dims, seed = 1) {
  const n = dims.reduce((a, b) => a * b, 1);
  return { data: Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 7.1 + i * 0.37)), dims };
}
const detach = (typed) => structuredClone(typed.buffer, { transfer: [typed.buffer] });

// A layer made before the call under test, and its output then: after the
// call it must still compute the same bits, and the module must be live.
async function witness() {
  const layer = await MultiheadAttention.create({ embedDim: 8, numHeads: 2, seed: 42 });
  const x = tensor([2, 3, 8], 9);
  return { layer, x, want: layer.forward(x).output.data };
}
async function assertHealthy(w, where) {
  assert.notEqual(capabilities().build, null, `${where}: the module was retired`);
  assert.deepEqual(w.layer.forward(w.x).output.data, w.want, `${where}: another layer's output changed`);
  assert.equal((await memoryStats()).liveHandles, 0, `${where}: embind handles left alive`);
}
// A TypeError or RangeError with a message; not a retired module.
function assertCleanError(err, where) {
  assert.ok(err instanceof TypeError || err instanceof RangeError, `${where}: threw ${err?.name}: ${err?.message}`);
  assert.ok(err.message.length > 0);
  assert.doesNotMatch(err.message, /trapped|retired/, `${where}: the module was retired`);
}

// --- 1. Typed arrays detached or resized while the call reads its arguments

test('forward: a query buffer detached by the key\'s getter gives a clean error or the first-read result, not a retired module',
  async () => {
    // Shrunk: { embedDim: 1, numHeads: 1 }, unbatched empty tensors; this is the same with data in it.
    const w = await witness();
    const mha = await MultiheadAttention.create({ embedDim: 8, numHeads: 2, seed: 1 });
    const q = tensor([2, 3, 8], 1), k = tensor([2, 3, 8], 2);
    const want = mha.forward(tensor([2, 3, 8], 1), tensor([2, 3, 8], 2)).output.data;
    const key = { get data() { detach(q.data); return k.data; }, dims: [2, 3, 8] };
    let result;
    try {
      result = mha.forward(q, key);
    } catch (err) {
      assertCleanError(err, 'forward');
    }
    if (result) assert.deepEqual(result.output.data, want, 'a result must be that of the values as first read');
    await assertHealthy(w, 'after forward');
    mha.dispose();
    w.layer.dispose();
  });

test('forward: a query on a resizable buffer shrunk by the key\'s getter must not be computed from stale WebAssembly memory',
  async () => {
    const w = await witness();
    const mha = await MultiheadAttention.create({ embedDim: 8, numHeads: 2, seed: 1 });
    const y = tensor([2, 3, 8], 7);
    const want = mha.forward(y, y).output.data;
    mha.forward(tensor([2, 3, 8], 5));  // an earlier call leaves another query in the slot
    const buffer = new ArrayBuffer(48 * 4, { maxByteLength: 48 * 4 });
    const q = new Float32Array(buffer);  // length-tracking
    q.set(y.data);
    const key = { get data() { buffer.resize(0); return y.data; }, dims: [2, 3, 8] };
    let result;
    try {
      result = mha.forward({ data: q, dims: [2, 3, 8] }, key);
    } catch (err) {
      assertCleanError(err, 'forward');
    }
    // Today: it succeeds, with an output that is not the one of the values as first read.
    if (result) assert.deepEqual(result.output.data, want, 'a result must be that of the values as first read');
    await assertHealthy(w, 'after forward');
    mha.dispose();
    w.layer.dispose();
  });

test('loadStateDict: a value\'s getter that detaches an earlier value\'s buffer gives a clean error, loads nothing, and keeps the module',
  async () => {
    const w = await witness();
    const mha = await MultiheadAttention.create({ embedDim: 4, numHeads: 2, seed: 1 });
    const before = mha.stateDict();
    const other = await MultiheadAttention.create({ embedDim: 4, numHeads: 2, seed: 2 });
    const sd = other.stateDict();
    other.dispose();
    const first = new Float32Array(sd.in_proj_weight.data);
    const dict = {
      in_proj_weight: first,
      in_proj_bias: sd.in_proj_bias.data,
      'out_proj.weight': sd['out_proj.weight'].data,
      get 'out_proj.bias'() { detach(first); return sd['out_proj.bias'].data; },
    };
    let loaded = false;
    try {
      mha.loadStateDict(dict);
      loaded = true;
    } catch (err) {
      assertCleanError(err, 'loadStateDict');
    }
    await assertHealthy(w, 'after loadStateDict');
    const after = mha.stateDict();
    if (loaded) assert.deepEqual(after.in_proj_weight.data, sd.in_proj_weight.data, 'loaded as first read');
    else for (const name of Object.keys(before)) assert.deepEqual(after[name].data, before[name].data, `'${name}' changed by a failed load`);
    mha.dispose();
    w.layer.dispose();
  });

test('forward: a detached Float32Array where dims need no values (B = 0) is an empty tensor or a clean error, not a retired module',
  async () => {
    const w = await witness();
    const mha = await MultiheadAttention.create({ embedDim: 8, numHeads: 2, seed: 1 });
    const empty = new Float32Array(0);
    detach(empty);
    let result;
    try {
      result = mha.forward({ data: empty, dims: [0, 3, 8] });
    } catch (err) {
      assertCleanError(err, 'forward');
    }
    if (result) assert.deepEqual(result.output.dims, [0, 3, 8]);
    await assertHealthy(w, 'after forward');
    // The same with a detached empty mask (shrunk by the property: unbatched, Lq = 0).
    const mha2 = await MultiheadAttention.create({ embedDim: 8, numHeads: 2, seed: 1 });
    const mask = new Uint8Array(0);
    detach(mask);
    try {
      mha2.forward(tensor([0, 3, 8]), null, null, { keyPaddingMask: { data: mask, dims: [0, 3] } });
    } catch (err) {
      assertCleanError(err, 'forward with a detached empty mask');
    }
    await assertHealthy(w, 'after forward with a detached empty mask');
    for (const m of [mha, mha2, w.layer]) m.dispose();
  });

// --- 2. Re-entrancy: a getter that disposes the layer during the call

test('forward and loadStateDict: a getter that disposes the layer mid-call ends in an Error saying so, and the module lives on',
  async () => {
    const w = await witness();
    const x = tensor([2, 3, 4]);
    const a = await MultiheadAttention.create({ embedDim: 4, numHeads: 2 });
    try {
      // Shrunk: { embedDim: 1, numHeads: 1 }, forward({ data: Float32Array(0), dims: [0, 1] }, null, null, { get isCausal() { dispose } }).
      a.forward(x, null, null, { get needWeights() { a.dispose(); return 'none'; } });
    } catch (err) {
      assert.ok(err instanceof Error && !/trapped|retired/.test(err.message), `forward: ${err.message}`);
    }
    await assertHealthy(w, 'after forward');
    const b = await MultiheadAttention.create({ embedDim: 4, numHeads: 2 });
    const sd = b.stateDict();
    try {
      b.loadStateDict({ ...sd, get 'out_proj.bias'() { b.dispose(); return sd['out_proj.bias']; } });
    } catch (err) {
      assert.ok(err instanceof Error && !/trapped|retired/.test(err.message), `loadStateDict: ${err.message}`);
    }
    await assertHealthy(w, 'after loadStateDict');
    w.layer.dispose();
  });

// --- 3. Empty optional inputs on a layer that never had them

test('forward: an empty per-query validLens or per-head attnMask works on a fresh layer as it does on a used one',
  async () => {
    // Shrunk by the property: { embedDim: 1, numHeads: 1 }, forward({ data: Float32Array(0), dims: [0, 1] }, ..., { validLens: { data: [], dims: [0] } }).
    const fresh = await MultiheadAttention.create({ embedDim: 4, numHeads: 2 });
    const empty = { data: new Float32Array(0), dims: [0, 4] };
    const errors = [];
    const call = (what, f) => {
      try {
        assert.deepEqual(f().output.dims, what.dims);
      } catch (err) {
        errors.push(`${what.name}: ${err.name}: ${err.message}`);
      }
    };
    call({ name: 'unbatched Lq = 0, validLens []', dims: [0, 4] }, () => fresh.forward(empty, null, null, { validLens: [] }));
    call({ name: 'B = 0, validLens [0, 3]', dims: [0, 3, 4] }, () => fresh.forward({ data: new Float32Array(0), dims: [0, 3, 4] }, null, null, { validLens: { data: [], dims: [0, 3] } }));
    call({ name: 'B = 0, attnMask [B·H, Lq, Lk] = [0, 3, 3]', dims: [0, 3, 4] }, () => fresh.forward({ data: new Float32Array(0), dims: [0, 3, 4] }, null, null, { attnMask: { data: new Uint8Array(0), dims: [0, 3, 3] } }));
    call({ name: 'B = 0, attnMask [B, H, Lq, Lk] = [0, 2, 3, 3]', dims: [0, 3, 4] }, () => fresh.forward({ data: new Float32Array(0), dims: [0, 3, 4] }, null, null, { attnMask: { data: new Float32Array(0), dims: [0, 2, 3, 3] } }));
    fresh.dispose();
    assert.deepEqual(errors, [], 'the same calls succeed once an earlier call has used the slot');
  });

// --- 4. Would-be hangs

test('forward: a mask or validLens whose array claims 2^32 - 1 elements is refused after reading no more than dims need',
  async () => {
    const mha = await MultiheadAttention.create({ embedDim: 8, numHeads: 2, seed: 1 });
    const x = tensor([2, 3, 8]);
    const claiming = (element) => {
      const counter = { reads: 0 };
      const array = new Proxy([], {
        get(target, key, receiver) {
          if (key === 'length') return 2 ** 32 - 1;
          if (typeof key === 'string' && /^\d+$/.test(key)) {
            if (++counter.reads > 1e5) throw new Error('read more than 100000 elements');
            return element;
          }
          return Reflect.get(target, key, receiver);
        },
      });
      return { array, counter };
    };
    const mask = claiming(true);
    assert.throws(() => mha.forward(x, null, null, { keyPaddingMask: { data: mask.array, dims: [2, 3] } }), (err) => err instanceof RangeError || err instanceof TypeError);
    assert.ok(mask.counter.reads <= 6, `keyPaddingMask: ${mask.counter.reads} elements read for dims [2, 3]`);
    const lens = claiming(1);
    assert.throws(() => mha.forward(x, null, null, { validLens: lens.array }), (err) => err instanceof RangeError || err instanceof TypeError);
    assert.ok(lens.counter.reads <= 6, `validLens: ${lens.counter.reads} elements read for dims [2] or [2, 3]`);
    mha.dispose();
  });
