// Incremental decoding against the generator's float64 references: a prompt
// then single tokens or chunks through a KVCache give, step by step, the
// rows of one causal call over the whole sequence (weights over every
// position since the reset, keys a ring dropped at 0); rings under a
// sliding window, truncation, reset, a left-padded batch with positions and
// key padding over the cache; and an encoder memory over several steps.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  MultiheadAttention, KVCache, EncoderMemory, memoryStats, loadDecoderFixtures, checkDecoderSequence,
} from './helpers.js';

const { sequences } = loadDecoderFixtures();
test('the sequence fixtures cover what the contract names', () => {
  const names = sequences.map((c) => c.name).join(' ');
  for (const fragment of ['prompt', 'chunks', 'ring', 'truncate', 'leftpad', 'reset', 'memory', 'qknorm', 'alibi'])
    assert.ok(names.includes(fragment), `no sequence fixture named like '${fragment}'`);
});

for (const c of sequences) {
  test(`step by step as the whole sequence: ${c.name}`, () => checkDecoderSequence({ MultiheadAttention, KVCache, EncoderMemory }, c));
}

test('a cache refuses a full call, another layer, a batch it does not hold, and use after dispose', async () => {
  const mha = await MultiheadAttention.create({ embedDim: 8, numHeads: 2, numKVHeads: 1, rope: true });
  const other = await MultiheadAttention.create({ embedDim: 8, numHeads: 2, numKVHeads: 1 });
  const x = { data: new Float32Array(3 * 8).fill(0.5), dims: [1, 3, 8] };
  const cache = mha.createCache({ capacity: 4 });
  mha.forward(x, null, null, { cache });
  assert.throws(() => mha.forward(x, null, null, { cache }), (e) => e instanceof RangeError && /capacity 4/.test(e.message));
  assert.equal(cache.length, 3, 'a refused call leaves the cache as it was');
  assert.throws(() => other.forward(x, null, null, { cache }), /belongs to another layer/);
  assert.throws(() => mha.forward({ data: new Float32Array(2 * 8), dims: [2, 1, 8] }, null, null, { cache }), /batch/);
  assert.throws(() => mha.forward(x, null, null, { cache, causal: false }), /causal/);
  assert.throws(() => mha.forward(x, null, null, { cache: {} }), TypeError);
  assert.throws(() => cache.truncate(5), RangeError);
  assert.throws(() => mha.createCache({ capacity: 0 }), /capacity must be >= 1/);
  assert.throws(() => mha.createCache({ capacity: 4, batch: 1.5 }), /batch must be an integer/);
  cache.dispose();
  cache.dispose();
  assert.equal(cache.disposed, true);
  assert.throws(() => mha.forward(x, null, null, { cache }), /disposed/);
  mha.dispose();
  other.dispose();
});

test('ten thousand decode steps allocate nothing: heap and handles stay flat', async () => {
  const mha = await MultiheadAttention.create({ embedDim: 16, numHeads: 4, numKVHeads: 2, rope: true, slidingWindow: 64 });
  const cache = mha.createCache({ capacity: 64 });
  const token = { data: new Float32Array(16).fill(0.25), dims: [1, 1, 16] };
  for (let i = 0; i < 200; i++) mha.forward(token, null, null, { cache });  // past the ring's first wrap
  const before = await memoryStats();
  for (let i = 0; i < 10_000; i++) mha.forward(token, null, null, { cache });
  const after = await memoryStats();
  assert.equal(after.heapBytes, before.heapBytes);
  assert.equal(after.allocatedBytes, before.allocatedBytes);
  assert.equal(after.liveHandles, before.liveHandles);
  assert.equal(after.liveCaches, before.liveCaches);
  assert.equal(cache.length, 10_200);
  cache.dispose();
  mha.dispose();
});
