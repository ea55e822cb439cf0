// Every committed PyTorch case (tests/fixtures/generate.py, float64
// reference, cross-checked against nn.MultiheadAttention itself) through the
// public API, within 1e-4 absolute + 1e-4 relative; the one case whose inputs
// are of magnitude 1e4 carries a tolerance scaled by 1e4 in the manifest
// (float32 itself rounds values near 5e3 by 3e-4; see tests/fixtures/README.md).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';

import { MultiheadAttention, loadFixtures, assertClose, runFixtureCase, toleranceOf } from './helpers.js';

const cases = loadFixtures();
const worst = { output: 0, weights: 0, heads: 0, concat: 0 };

test('the fixtures cover the cases the project promises', () => {
  const names = cases.map((c) => c.name).join(' ');
  for (const fragment of ['teaching_B3_L4_E16_H8', 'E512', 'kvdim', 'nobias', 'bias_kv', 'zero_attn',
    'kpm_bool', 'kpm_float', 'attn2d_bool', 'attn3d_float', 'causal', 'validlens', 'fullmask', '_nan',
    'magnitude_1e4', 'Lq0', 'Lk0', 'unbatched', 'finfo_min'])
    assert.ok(names.includes(fragment), `no fixture case named like '${fragment}'`);
  assert.ok(cases.every((c) => c.crossChecked), 'every case was cross-checked against torch.nn.MultiheadAttention');
});

for (const c of cases) {
  test(`matches PyTorch: ${c.name}`, async () => {
    const result = await runFixtureCase({ MultiheadAttention }, c);
    for (const part of ['output', 'heads', 'concat', 'weights']) {
      if (!(part in c.expected)) {
        assert.equal(result[part], undefined, `${part} was not asked for`);
        continue;
      }
      worst[part] = Math.max(worst[part], assertClose(result[part], c.expected[part], { ...toleranceOf(c, part), what: part }));
    }
  });
}

after(() => {
  console.log(`# worst absolute error against PyTorch float64: ${JSON.stringify(worst)}`);
});
