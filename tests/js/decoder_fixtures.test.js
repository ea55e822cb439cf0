// Today's decoder attention against the generator's float64 references
// (tests/fixtures/generate_decoder.py: Hugging Face's eager attention step
// by step, cross-checked by an independent loop implementation): grouped
// and multi-query heads, head widths of their own, rotary embeddings of
// both layouts with linear, llama3, yarn and longrope scaling, QK-norm, scale, softcap,
// ALiBi, sliding windows, explicit positions, Hugging Face's 4-D masks,
// GPT-OSS's sinks, and the combinations real models use. Within 1e-4
// absolute + relative.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';

import { MultiheadAttention, loadDecoderFixtures, checkDecoderCase } from './helpers.js';

const { single } = loadDecoderFixtures();
const worst = {};

test('the decoder fixtures cover what the contract names', () => {
  const names = single.map((c) => c.name).join(' ');
  for (const fragment of ['gqa', 'mqa', 'headdim', 'rope_half', 'rope_interleaved', 'rope_partial', 'linear', 'llama3', 'yarn', 'longrope',
    'positions_4000', 'scale', 'softcap', 'alibi_H6', 'alibi_causal', 'window_W1', 'window_W3', 'qknorm',
    'bottomright', 'leftpad', 'hf_mask4d', 'llama32_like', 'qwen3_like', 'gemma2_like', 'cross_kdim', 'sinks', 'sinks_fullmask',
    'gpt_oss_like'])
    assert.ok(names.includes(fragment), `no decoder fixture case named like '${fragment}'`);
});

for (const c of single) {
  test(`matches the Hugging Face reference: ${c.name}`, async () => {
    const errors = await checkDecoderCase({ MultiheadAttention }, c);
    for (const [part, e] of Object.entries(errors)) worst[part] = Math.max(worst[part] ?? 0, e);
  });
}

after(() => console.log(`# worst absolute error against the decoder references: ${JSON.stringify(worst)}`));
