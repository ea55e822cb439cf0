// The playground's decoder options and a checkpoint's layer, in Chromium:
// each control changes what the package is asked for, and the numbers shown
// equal the package's in Node for the same options; the mask preview agrees
// with the package's weights; heads are ranked by the entropy of their
// weights and two can be compared; one layer of a multi-layer checkpoint is
// read from local files (only that layer's bytes) and a refused config or a
// truncated file is explained next to the file input.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { MultiheadAttention } from '../../dist/index.js';
import { embedLines } from '../../web/embeddings.js';
import { openBrowser, artifactsDir } from './browser.js';
import { openDemo, settle, lastRun, nodeRun, at, figure, hoverCell } from './demo_page.js';

let browser;
before(async () => { browser = await openBrowser(); });
after(async () => { await browser?.close(); });

const artifact = (name) => fileURLToPath(new URL(name, artifactsDir));
const models = new URL('../fixtures/models/', import.meta.url);
const fixture = (path) => readFileSync(new URL(path, models));

async function ready(page) {
  await settle(page);
  assert.equal(await page.getAttribute('#app', 'data-state'), 'ready', await page.textContent('#status'));
}

const closeTo = (a, b, tol, what) => a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) <= tol, `${what}[${i}]: ${v} vs ${b[i]}`));

test('key/value heads, partial RoPE with a shift, a window: groups coloured, mask preview, numbers equal Node\'s', async () => {
  const { page, errors } = await openDemo(browser);
  const sentence = 'one two three four five six';
  const E = 16, h = 4, L = 6;
  await page.fill('#text', sentence);
  await page.fill('#h', String(h));
  await page.fill('#kv-heads', '2');
  await page.check('#rope');
  await page.fill('#rope-dim', '2');      // d = 4: partial rotary, half the features rotate
  await page.fill('#window', '3');
  await page.check('#causal');
  await ready(page);

  // Heads sharing a key/value head: one group per pair, coloured alike.
  const groups = await page.$$eval('#heads .head-card[data-head]:not(.avg)', (cs) => cs.map((c) => c.dataset.kvGroup));
  assert.deepEqual(groups, ['0', '0', '1', '1']);
  assert.match(await page.textContent('#rope-note'), /r = 2 of d = 4 features rotate.*the other 2 pass through unrotated/);

  const emb = embedLines([sentence], E);
  const decoder = { numKVHeads: 2, rope: { dim: 2, layout: 'half' }, slidingWindow: 3 };
  const base = { E, h, decoder, X: emb.data, dims: emb.dims, mask: Array(L).fill(0), maskDims: [1, L], isCausal: true };
  const node = await nodeRun(base);
  let run = await lastRun(page);
  assert.equal(run.layer.numKVHeads, 2);
  assert.deepEqual(run.layer.rope.dim, 2);
  for (const k of ['output', 'weights', 'heads', 'concat']) assert.deepEqual(run.result[k], node[k], k);

  // The mask preview: causal hides key 4 from query 2, the window hides key 0 from query 3; both get weight 0.
  const mask = figure(page, 'mask');
  for (const [i, j, visible] of [[2, 4, 0], [3, 0, 0], [3, 1, 1], [5, 5, 1]]) {
    const cell = await hoverCell(page, mask, i, j);
    assert.equal(cell.value, visible, `preview (${i}, ${j})`);
    for (let head = 0; head < h; head++) {
      const w = node.weights[at(node.weightsDims, 0, head, i, j)];
      assert.ok(visible ? w > 0 : w === 0, `head ${head} weight (${i}, ${j}) = ${w}`);
    }
  }

  // Shifting every position by k: the package's weights at k equal those at 0 up to rounding.
  await page.fill('#shift', '7');
  await ready(page);
  run = await lastRun(page);
  assert.deepEqual(run.positions, [7, 8, 9, 10, 11, 12]);
  const shifted = await nodeRun({ ...base, positions: [7, 8, 9, 10, 11, 12] });
  assert.deepEqual(run.result.weights, shifted.weights);
  closeTo(run.result.weights, node.weights, 1e-5, 'weights at k = 7 vs k = 0');
  assert.match(await page.textContent('#shift-note'), /the same relative distances.*Largest change of a weight: \d\.\de-\d+/);
  await page.screenshot({ path: artifact('demo-decoder.png'), fullPage: true });
  assert.deepEqual(errors, []);
  await page.close();
});

test('softcap, ALiBi, q/k norm, sinks and a scale reach the package; refused ones are explained by the argument they name', async () => {
  const { page, errors } = await openDemo(browser);
  const sentence = 'softcap and alibi together';
  const E = 16, h = 4;
  await page.fill('#text', sentence);
  await page.fill('#softcap', '2.5');
  await page.check('#alibi');
  await page.check('#qk-norm');
  await page.check('#sinks');
  await page.fill('#scale', '0.3');
  await ready(page);
  const emb = embedLines([sentence], E);
  const node = await nodeRun({ E, h, decoder: { softcap: 2.5, alibi: true, qkNorm: true, sinks: true, scale: 0.3 }, X: emb.data, dims: emb.dims, mask: [0, 0, 0, 0], maskDims: [1, 4] });
  const run = await lastRun(page);
  assert.equal(run.layer.softcap, 2.5);
  assert.equal(run.layer.alibi, true);
  assert.equal(run.layer.sinks, true);
  // A sink of 0 takes its share of every row: no row of weights sums to 1.
  for (let r = 0; r < node.weights.length / 4; r++)
    assert.ok(node.weights.slice(r * 4, r * 4 + 4).reduce((a, b) => a + b, 0) < 0.999, `row ${r} of the weights`);
  assert.deepEqual(run.result.output, node.output);
  assert.deepEqual(run.result.weights, node.weights);
  const good = run.result.output;

  // 3 key/value heads cannot serve 4 query heads: the package says so, next to the field.
  await page.fill('#kv-heads', '3');
  await settle(page);
  assert.match(await page.textContent('#kv-heads-msg'), /numKVHeads/);
  assert.equal(await page.getAttribute('#kv-heads', 'aria-invalid'), 'true');
  assert.equal(await page.getAttribute('#app', 'data-state'), 'stale');
  assert.deepEqual((await lastRun(page)).result.output, good, 'the last good result stays');
  await page.fill('#kv-heads', '');
  // add_bias_kv has no position: refused with ALiBi, in the decoder block's line.
  await page.check('#bias-kv');
  await settle(page);
  assert.match(await page.textContent('#decoder-msg'), /addBiasKV/);
  await page.uncheck('#bias-kv');
  await page.fill('#softcap', 'soft');
  await settle(page);
  assert.match(await page.textContent('#softcap-msg'), /not a number/);
  await page.fill('#softcap', '');
  await ready(page);
  assert.deepEqual(errors, []);
  await page.close();
});

test('heads ranked by the entropy of their weights; two picked heads side by side, by keyboard too', async () => {
  const { page, errors } = await openDemo(browser);
  await page.fill('#text', 'which head looks where in this sentence');
  await page.fill('#h', '8');
  await ready(page);
  const run = await lastRun(page);
  const [, H, L, S] = run.result.weightsDims;
  // The test's own entropies of the package's weights.
  const mean = Array.from({ length: H }, (_, head) => {
    let sum = 0;
    for (let i = 0; i < L; i++) {
      let e = 0;
      for (let j = 0; j < S; j++) { const w = run.result.weights[at(run.result.weightsDims, 0, head, i, j)]; if (w > 0) e -= w * Math.log(w); }
      sum += e;
    }
    return sum / L;
  });
  const strip = await page.$$eval('#rank button', (bs) => bs.map((b) => ({ head: Number(b.dataset.head), entropy: Number(b.dataset.entropy) })));
  assert.equal(strip.length, H);
  const order = [...mean.keys()].sort((a, b) => mean[a] - mean[b] || a - b);
  assert.deepEqual(strip.map((s) => s.head), order);
  strip.forEach((s) => assert.ok(Math.abs(s.entropy - mean[s.head]) < 1e-9, `head ${s.head}`));

  // Pick two: one by click, one by keyboard.
  await page.click(`#rank button[data-head="${order[0]}"]`);
  await settle(page);
  await page.focus(`#rank button[data-head="${order[H - 1]}"]`);
  await page.keyboard.press('Enter');
  await settle(page);
  assert.deepEqual(await page.$$eval('#compare figure[data-kind="compare-weights"]', (fs) => fs.map((f) => Number(f.dataset.head))), [order[0], order[H - 1]]);
  assert.equal(await page.getAttribute(`#rank button[data-head="${order[0]}"]`, 'aria-pressed'), 'true');
  const cell = await hoverCell(page, figure(page, 'compare-weights', order[H - 1]), 2, 3);
  assert.equal(cell.value, run.result.weights[at(run.result.weightsDims, 0, order[H - 1], 2, 3)]);
  await page.locator('#compare-sec').screenshot({ path: artifact('demo-compare.png') });
  assert.deepEqual(errors, []);
  await page.close();
});

// A file input takes { name, mimeType, buffer } items.
const files = (config, model) => [
  { name: 'config.json', mimeType: 'application/json', buffer: Buffer.isBuffer(config) ? config : Buffer.from(JSON.stringify(config)) },
  { name: 'model.safetensors', mimeType: 'application/octet-stream', buffer: model },
];

test('a layer of a 3-layer checkpoint from local files: only that layer read, numbers equal fromSafetensors in Node; bad files explained', async () => {
  const { page, errors } = await openDemo(browser);
  const config = JSON.parse(fixture('llama/config.json'));
  const model = fixture('llama/model.safetensors');
  assert.equal(config.num_hidden_layers, 3);
  const sentence = 'a real layer';
  await page.fill('#text', sentence);
  await page.fill('#ckpt-layer', '1');
  await page.setInputFiles('#ckpt-files', files(config, model));
  await ready(page);
  assert.equal(await page.inputValue('#E'), '32');
  assert.equal(await page.inputValue('#h'), '4');
  // The progress bar ran to the end, and far fewer bytes than the file's were read.
  const [value, max] = await page.$eval('#ckpt-progress', (p) => [p.value, p.max]);
  assert.equal(value, max);
  const read = Number(await page.getAttribute('#ckpt-info', 'data-bytes-read'));
  assert.ok(read < model.length / 4, `read ${read} of ${model.length} bytes`);
  assert.match(await page.textContent('#ckpt-info'), /llama layer 1 of 3: E 32, 4 heads, 2 key\/value heads, d 8/);
  // Heads 1–2 and 3–4 share key/value heads.
  assert.deepEqual(await page.$$eval('#heads .head-card:not(.avg)', (cs) => cs.map((c) => c.dataset.kvGroup)), ['0', '0', '1', '1']);

  const emb = embedLines([sentence], 32);
  const check = async (layer) => {
    const mha = await MultiheadAttention.fromSafetensors(model, { config, layer });
    try {
      const node = await nodeRun({ layer: mha, X: emb.data, dims: emb.dims, mask: [0, 0, 0], maskDims: [1, 3] });
      const run = await lastRun(page);
      assert.equal(run.config.weights, 'checkpoint');
      assert.deepEqual(run.result.output, node.output, `layer ${layer}`);
      assert.deepEqual(run.result.weights, node.weights, `layer ${layer}`);
      return node.output;
    } finally {
      mha.dispose();
    }
  };
  const one = await check(1);
  await page.fill('#ckpt-layer', '2');
  await page.press('#ckpt-layer', 'Enter');
  await page.locator('#ckpt-layer').blur();
  await ready(page);
  assert.notDeepEqual(await check(2), one);
  await page.screenshot({ path: artifact('demo-checkpoint.png'), fullPage: false });

  // A layer the model does not have, next to the layer field.
  await page.fill('#ckpt-layer', '5');
  await page.locator('#ckpt-layer').blur();
  await settle(page);
  assert.match(await page.textContent('#ckpt-layer-msg'), /3 layers/);
  assert.equal(await page.getAttribute('#app', 'data-state'), 'stale');
  await page.fill('#ckpt-layer', '1');
  await page.locator('#ckpt-layer').blur();
  await ready(page);

  // A config the package refuses (dynamic NTK RoPE scaling): its message, next to the files.
  await page.setInputFiles('#ckpt-files', files(fixture('refused/config_dynamic.json'), fixture('qwen2/model.safetensors')));
  await settle(page);
  assert.match(await page.textContent('#ckpt-files-msg'), /rope_scaling.*dynamic/);
  assert.equal(await page.getAttribute('#ckpt-files', 'aria-invalid'), 'true');
  assert.equal(await page.getAttribute('#app', 'data-state'), 'stale');

  // A file cut short inside layer 2's attention: layer 2 is refused by the package, layer 0 still loads.
  const cut = model.subarray(0, 8 + Number(model.readBigUInt64LE(0)) + 47000);
  await page.fill('#ckpt-layer', '2');
  await page.setInputFiles('#ckpt-files', files(config, cut));
  await settle(page);
  assert.match(await page.textContent('#ckpt-files-msg'), /safetensors:/);
  await page.fill('#ckpt-layer', '0');
  await page.locator('#ckpt-layer').blur();
  await ready(page);
  assert.equal(await page.textContent('#ckpt-files-msg'), '');
  // A header cut short: the package's message too.
  await page.setInputFiles('#ckpt-files', files(config, model.subarray(0, 100)));
  await settle(page);
  assert.match(await page.textContent('#ckpt-files-msg'), /safetensors: the header claims/);

  // A Phi-3 128k-style checkpoint (longrope RoPE; three tokens, within its original context of 8): the page's numbers are Node's.
  const phiConfig = JSON.parse(fixture('phi3/config_longrope.json'));
  const phiModel = fixture('phi3/model.safetensors');
  await page.setInputFiles('#ckpt-files', files(phiConfig, phiModel));
  await ready(page);
  assert.equal(await page.textContent('#ckpt-files-msg'), '');
  assert.match(await page.textContent('#ckpt-info'), /phi3 layer 0 of 2/);
  const phi = await MultiheadAttention.fromSafetensors(phiModel, { config: phiConfig, layer: 0 });
  try {
    assert.equal(phi.rope.scaling.type, 'longrope');
    const node = await nodeRun({ layer: phi, X: emb.data, dims: emb.dims, mask: [0, 0, 0], maskDims: [1, 3] });
    assert.deepEqual((await lastRun(page)).result.output, node.output);
  } finally {
    phi.dispose();
  }
  assert.deepEqual(errors, []);
  await page.close();
});
