// One attention layer of real-layout Hugging Face checkpoints, loaded with
// MultiheadAttention.fromSafetensors(bytes, { config, layer, attention }):
// tiny multi-layer models of sixteen families (tests/fixtures/models/<family>/,
// written by tests/fixtures/generate_models.py) in each family's own key
// names, fused layouts and config.json fields, stored as F32, F16 or BF16,
// next to tensors the loader must ignore. Each case checks the properties
// the config implies for that layer (heads, head width, RoPE base / scaling /
// width, scale, softcap, window, QK-norm, ALiBi, biases) and the forward
// pass against the generator's float64 Hugging Face reference, within
// 1e-4 absolute + 1e-4 relative. Configs mha-wasm does not implement, and
// layers the file does not have, are refused with a RangeError naming them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { MultiheadAttention, assertClose } from './helpers.js';

const modelsDir = new URL('../fixtures/models/', import.meta.url);
const FAMILIES = ['llama', 'qwen2', 'qwen3', 'mistral', 'gemma2', 'gemma3_text', 'phi3', 'smollm3', 'gpt_oss', 'granite', 'mixtral', 'qwen2_moe', 'qwen3_moe', 'gpt_neox', 'bloom', 'whisper'];
const TOLERANCE = { atol: 1e-4, rtol: 1e-4 };

const readBytes = (dir, name) => readFileSync(new URL(`${dir}/${name}`, modelsDir));
const readJson = (dir, name) => JSON.parse(readBytes(dir, name).toString('utf8'));
const tensor = (T, t) => ({ data: T.from(t.data), dims: t.dims });

// The dtypes a safetensors file stores, from its header.
function fileDtypes(bytes) {
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
  return new Set(Object.entries(header).filter(([k]) => k !== '__metadata__').map(([, e]) => e.dtype));
}

function caseConfig(family, c) {
  const config = readJson(family, c.config);
  return c.configKey === undefined ? config : config[c.configKey];
}

function loadOptions(family, c) {
  return { config: caseConfig(family, c), layer: c.layer, ...(c.attention === undefined ? {} : { attention: c.attention }) };
}

function forwardOptions(options) {
  const o = { ...options };
  if (o.positions !== undefined) o.positions = tensor(Int32Array, o.positions);
  return o;
}

function checkProperties(mha, p) {
  for (const name of ['embedDim', 'numHeads', 'numKVHeads', 'headDim', 'kdim', 'alibi'])
    assert.equal(mha[name], p[name], name);
  assert.deepEqual(mha.rope, p.rope, 'rope');
  assert.ok(Math.abs(mha.scale - p.scale) <= 1e-12 * p.scale, `scale: got ${mha.scale}, expected ${p.scale}`);
  assert.equal(mha.softcap, p.softcap, 'softcap');
  assert.equal(mha.slidingWindow, p.slidingWindow, 'slidingWindow');
  assert.deepEqual(mha.qkNorm, p.qkNorm, 'qkNorm');
  assert.deepEqual(mha.bias, p.bias, 'bias');
  assert.equal(mha.sinks, p.sinks ?? false, 'sinks');
}

const manifests = Object.fromEntries(FAMILIES.map((family) => [family, readJson(family, 'expected.json')]));

test('the model fixtures cover every family, every storage dtype, a prefixed file and explicit positions', () => {
  assert.deepEqual(Object.values(manifests).map((m) => m.family), FAMILIES);
  const dtypes = new Set(FAMILIES.flatMap((family) => [...fileDtypes(readBytes(family, 'model.safetensors'))]));
  assert.deepEqual([...dtypes].sort(), ['BF16', 'F16', 'F32']);
  const cases = Object.values(manifests).flatMap((m) => m.cases);
  assert.ok(cases.some((c) => c.model !== 'model.safetensors'), 'no case reads a prefixed (language_model.) file');
  assert.ok(cases.some((c) => c.options.positions !== undefined), 'no case with explicit positions');
  assert.ok(cases.some((c) => c.attention === 'cross'), 'no cross-attention case');
  for (const m of Object.values(manifests))
    assert.ok(m.cases.some((c) => c.layer > 0), `${m.family}: every case reads layer 0`);
});

for (const family of FAMILIES) {
  const manifest = manifests[family];
  for (const c of manifest.cases) {
    test(`${c.name}: ${c.config}${c.configKey ? `.${c.configKey}` : ''}, layer ${c.layer}` +
      `${c.attention ? ` (${c.attention})` : ''}, ${manifest.dtype} weights`, async (t) => {
      const mha = await MultiheadAttention.fromSafetensors(readBytes(family, c.model), loadOptions(family, c));
      try {
        await t.test('the layer has the properties the config implies', () => checkProperties(mha, c.properties));
        await t.test('forward matches the Hugging Face reference', () => {
          const memory = c.memory === undefined ? null : tensor(Float32Array, c.memory);
          const result = mha.forward(tensor(Float32Array, c.x), memory, memory, forwardOptions(c.options));
          for (const part of ['output', 'weights', 'heads', 'concat'])
            assertClose(result[part], tensor(Float64Array, c.expected[part]), { ...TOLERANCE, what: `${c.name} ${part}` });
        });
      } finally {
        mha.dispose();
      }
    });
  }

  test(`${family}: a layer past the last one is refused, naming 'layer'`, async () => {
    const c = manifest.cases[0];
    const options = { ...loadOptions(family, c), layer: manifest.numLayers };
    await assert.rejects(MultiheadAttention.fromSafetensors(readBytes(family, c.model), options), (err) => {
      assert.ok(err instanceof RangeError, `expected a RangeError, got ${err}`);
      assert.match(err.message, /layer/);
      return true;
    });
  });
}

const refused = readJson('refused', 'expected.json');
for (const c of refused.cases) {
  test(`${c.config} is refused, naming ${c.messageIncludes.join(' and ')}`, async () => {
    const bytes = readFileSync(new URL(`refused/${c.model}`, modelsDir));
    const options = { config: readJson('refused', c.config), layer: c.layer };
    await assert.rejects(MultiheadAttention.fromSafetensors(bytes, options), (err) => {
      assert.equal(err.constructor.name, c.error, `expected a ${c.error}, got ${err}`);
      for (const s of c.messageIncludes) assert.ok(err.message.includes(s), `message '${err.message}' does not name ${s}`);
      return true;
    });
  });
}

test('a SmolLM3 config whose no_rope_layers entry is not 0 or 1 is refused, naming the entry', async () => {
  const config = { ...readJson('smollm3', 'config.json'), no_rope_layers: [1, 1, 'yes', 0] };
  await assert.rejects(MultiheadAttention.fromSafetensors(readBytes('smollm3', 'model.safetensors'), { config, layer: 2 }), (err) => {
    assert.ok(err instanceof RangeError, `${err}`);
    assert.ok(err.message.includes('config.no_rope_layers[2]'), err.message);
    return true;
  });
  // The other layers' entries are fine: layer 1 loads.
  const layer = await MultiheadAttention.fromSafetensors(readBytes('smollm3', 'model.safetensors'), { config, layer: 1 });
  assert.equal(layer.rope.base, 5000000);
  layer.dispose();
});

test('a Qwen2-MoE layer that layer_types calls sliding without use_sliding_window is refused, naming the entry', async () => {
  // Qwen2MoeConfig makes the window 0 then: every key of that layer blocked.
  const base = readJson('qwen2_moe', 'config_transformers5.json');
  const config = { ...base, use_sliding_window: false, layer_types: ['sliding_attention', 'full_attention', 'full_attention', 'full_attention'] };
  await assert.rejects(MultiheadAttention.fromSafetensors(readBytes('qwen2_moe', 'model.safetensors'), { config, layer: 0 }), (err) => {
    assert.ok(err instanceof RangeError, `${err}`);
    assert.ok(err.message.includes('config.layer_types[0]'), err.message);
    return true;
  });
  const layer = await MultiheadAttention.fromSafetensors(readBytes('qwen2_moe', 'model.safetensors'), { config, layer: 1 });
  assert.equal(layer.slidingWindow, null);
  layer.dispose();
});

test('Qwen2 and Qwen3 layers slide only with use_sliding_window, whatever layer_types says', async () => {
  for (const family of ['qwen2', 'qwen3']) {
    const base = readJson(family, 'config.json');
    const layerTypes = Array.from({ length: base.num_hidden_layers }, () => 'sliding_attention');
    for (const use of [false, true]) {
      const config = { ...base, sliding_window: 3, use_sliding_window: use, layer_types: layerTypes };
      const layer = await MultiheadAttention.fromSafetensors(readBytes(family, 'model.safetensors'), { config, layer: 0 });
      assert.equal(layer.slidingWindow, use ? 3 : null, `${family}, use_sliding_window ${use}`);
      layer.dispose();
    }
  }
});

test('Mistral and Phi-3 give every layer the config\'s window: one mask for all layers, layer_types unread', async () => {
  for (const family of ['mistral', 'phi3']) {
    const base = readJson(family, 'config.json');
    const config = { ...base, sliding_window: 3, layer_types: Array.from({ length: base.num_hidden_layers }, () => 'full_attention') };
    const layer = await MultiheadAttention.fromSafetensors(readBytes(family, 'model.safetensors'), { config, layer: 0 });
    assert.equal(layer.slidingWindow, 3, family);
    layer.dispose();
  }
});

test('Llama and Granite layers never slide, whatever sliding_window and layer_types say', async () => {
  for (const family of ['llama', 'granite']) {
    const base = readJson(family, 'config.json');
    const config = { ...base, sliding_window: 3, use_sliding_window: true,
      layer_types: Array.from({ length: base.num_hidden_layers }, () => 'sliding_attention') };
    const layer = await MultiheadAttention.fromSafetensors(readBytes(family, 'model.safetensors'), { config, layer: 0 });
    assert.equal(layer.slidingWindow, null, family);
    layer.dispose();
  }
});
