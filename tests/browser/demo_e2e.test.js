// End to end through the demo page, as a person uses it: type a sentence,
// change the head count, turn causal on, mask a token by clicking it; then the
// page must show h per-head maps and the [L, h·d] concatenation, and every
// number it shows (hover and keyboard readouts and the exported JSON) must equal what the package computes in Node for the same
// input and options. Screenshots at desktop and phone width go to tests/artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { embedLines, splitLines, randomMatrix } from '../../web/embeddings.js';
import { openBrowser, artifactsDir } from './browser.js';
import { openDemo, settle, lastRun, nodeRun, at, figure, hoverCell, keyboardCell } from './demo_page.js';

let browser;
before(async () => { browser = await openBrowser(); });
after(async () => { await browser?.close(); });

const artifact = (name) => fileURLToPath(new URL(name, artifactsDir));

test('type, set h and causal, mask a token: h maps, the concat [L, h·d], and the numbers shown equal Node\'s', async (t) => {
  const { page, errors } = await openDemo(browser);
  const sentence = 'the quick brown fox jumps over the lazy dog';
  await page.fill('#text', sentence);
  await page.fill('#h', '8');          // E = 16 (default) → d = 2
  await page.check('#causal');
  await settle(page);
  const fox = page.locator('#keys .tok[data-index="3"]');
  assert.equal(await fox.textContent(), 'fox');
  await fox.click();
  await settle(page);
  assert.equal(await page.getAttribute('#app', 'data-state'), 'ready', await page.textContent('#status'));

  // The masked token is visibly marked, as a pressed toggle.
  const foxAgain = page.locator('#keys .tok[data-index="3"]');
  assert.equal(await foxAgain.getAttribute('aria-pressed'), 'true');
  assert.match(await foxAgain.getAttribute('class'), /\bmasked\b/);
  assert.match(await foxAgain.evaluate((el) => getComputedStyle(el).textDecorationLine), /line-through/);

  // h per-head weight maps and h Zᵢ maps, the average beside them, and the concat [L, h·d].
  const L = 9, E = 16, h = 8, d = 2;
  assert.equal(await figure(page, 'head-weights').count(), h);
  assert.equal(await figure(page, 'head-output').count(), h);
  assert.equal(await figure(page, 'average-weights').count(), 1);
  const dimsOf = (fig) => fig.locator('canvas').evaluate((c) => [Number(c.dataset.rows), Number(c.dataset.cols)]);
  assert.deepEqual(await dimsOf(figure(page, 'head-weights', 0)), [L, L]);
  assert.deepEqual(await dimsOf(figure(page, 'head-output', 7)), [L, d]);
  assert.deepEqual(await dimsOf(figure(page, 'concat')), [L, h * d]);
  assert.match(await figure(page, 'concat').locator('.hm-title').textContent(), /\[9, 8·2\] = \[9, 16\]/);
  assert.deepEqual(await dimsOf(figure(page, 'output')), [L, E]);
  // The shape walk with the real numbers.
  const walkDims = await page.$$eval('#walk .walk-step', (steps) => Object.fromEntries(
    steps.map((s) => [s.dataset.stage, JSON.parse(s.querySelector('.walk-shape').dataset.dims)])));
  assert.deepEqual(walkDims, {
    X: [1, L, E], 'Q, K, V': [1, L, E], split: [1, L, h, d], transpose: [1, h, L, d],
    'Zᵢ': [1, h, L, d], concat: [1, L, h * d], output: [1, L, E],
  });

  // Node, from the test's own input and options.
  const emb = embedLines([sentence], E);
  const mask = [0, 0, 0, 1, 0, 0, 0, 0, 0];
  const node = await nodeRun({ E, h, seed: 0, X: emb.data, dims: emb.dims, mask, maskDims: [1, L], isCausal: true });
  const run = await lastRun(page);
  assert.deepEqual(run.input.X, Array.from(emb.data));
  assert.deepEqual(run.options.keyPaddingMask, mask);
  assert.equal(run.options.isCausal, true);
  for (const k of ['output', 'weights', 'average', 'heads', 'concat']) assert.deepEqual(run.result[k], node[k], k);

  // Values read off the page: hover and keyboard readouts.
  const W = node.weightsDims, Z = node.headsDims, C = node.concatDims, O = node.outputDims;
  let cell = await hoverCell(page, figure(page, 'head-weights', 2), 6, 4);
  assert.deepEqual([cell.row, cell.col], [6, 4]);
  assert.equal(cell.value, node.weights[at(W, 0, 2, 6, 4)], cell.text);
  assert.match(cell.text, /query 6 “the” · key 4 “jumps”/);
  cell = await hoverCell(page, figure(page, 'head-weights', 5), 7, 3);  // the masked key
  assert.equal(cell.value, 0);
  cell = await hoverCell(page, figure(page, 'head-weights', 5), 2, 6);  // causal: key after the query
  assert.equal(cell.value, 0);
  cell = await keyboardCell(page, figure(page, 'head-output', 7), 5, 1);
  assert.deepEqual([cell.row, cell.col], [5, 1]);
  assert.equal(cell.value, node.heads[at(Z, 0, 7, 5, 1)], cell.text);
  cell = await keyboardCell(page, figure(page, 'concat'), 8, 13);
  assert.equal(cell.value, node.concat[at(C, 0, 8, 13)], cell.text);
  assert.match(cell.text, /Z₇ dim 1/);
  cell = await hoverCell(page, figure(page, 'output'), 4, 11);
  assert.equal(cell.value, node.output[at(O, 0, 4, 11)], cell.text);
  cell = await hoverCell(page, figure(page, 'average-weights'), 8, 0);
  assert.equal(cell.value, node.average[at(node.averageDims, 0, 8, 0)], cell.text);
  // Not trivially equal: the shown values are not all zero or alike.
  assert.notEqual(node.weights[at(W, 0, 2, 6, 4)], node.weights[at(W, 0, 3, 6, 4)]);

  // Clicking the token again unmasks it.
  await page.locator('#keys .tok[data-index="3"]').click();
  await settle(page);
  assert.equal(await page.locator('#keys .tok[data-index="3"]').getAttribute('aria-pressed'), 'false');
  assert.deepEqual((await lastRun(page)).options.keyPaddingMask, Array(L).fill(0));

  // Export JSON: everything shown, equal to Node's numbers.
  await page.locator('#keys .tok[data-index="3"]').click();
  await settle(page);
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export')]);
  const exported = JSON.parse(readFileSync(await download.path(), 'utf8'));
  const { layer, ...config } = exported.config;
  assert.deepEqual(config, { embedDim: E, numHeads: h, headDim: d, bias: true, addBiasKV: false, addZeroAttn: false, weights: { source: 'seeded', seed: 0 } });
  assert.equal(layer.numKVHeads, h);
  assert.equal(exported.forwardOptions.isCausal, true);
  assert.deepEqual(exported.forwardOptions.keyPaddingMask.data, mask);
  assert.deepEqual(exported.input.tokens, [sentence.split(' ')]);
  assert.deepEqual(exported.input.query.data, Array.from(emb.data));
  assert.deepEqual(exported.output.output.data, node.output);
  assert.deepEqual(exported.output.weightsPerHead.data, node.weights);
  assert.deepEqual(exported.output.weightsAverage.data, node.average);
  assert.deepEqual(exported.output.heads.data, node.heads);
  assert.deepEqual(exported.output.concat.data, node.concat);
  assert.equal(exported.package.version, await page.evaluate(() => import('mha-wasm').then((m) => m.version)));

  // Keyboard: every control and every heatmap can take focus.
  const unfocusable = await page.$$eval('input, select, textarea, button, canvas',
    (els) => els.filter((e) => !e.disabled && e.tabIndex < 0).map((e) => e.id || e.outerHTML.slice(0, 60)));
  assert.deepEqual(unfocusable, []);
  const unlabelled = await page.$$eval('input:not([type=radio]), select, textarea',
    (els) => els.filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map((e) => e.id));
  assert.deepEqual(unlabelled, []);
  // What ran: version, build, forward time.
  assert.match(await page.textContent('#info-version'), /^mha-wasm \d+\.\d+\.\d+/);
  assert.match(await page.textContent('#info-build'), /SIMD ✓/);
  assert.match(await page.textContent('#info-forward'), /\d+\.\d+ ms/);

  await page.mouse.move(0, 0);
  await page.evaluate(() => { window.scrollTo(0, 0); document.getElementById('controls').scrollTop = 0; document.activeElement?.blur(); });
  await page.screenshot({ path: artifact('demo-desktop.png') });
  await page.screenshot({ path: artifact('demo-desktop-full.png'), fullPage: true });
  // MHA_UPDATE_DEMO_PNG=1 refreshes the README's screenshot from this run.
  if (process.env.MHA_UPDATE_DEMO_PNG === '1') {
    const docs = fileURLToPath(new URL('../../docs/demo.png', import.meta.url));
    copyFileSync(artifact('demo-desktop.png'), docs);
    t.diagnostic(`docs/demo.png: ${statSync(docs).size} bytes`);
  }
  assert.deepEqual(errors, []);
  await page.close();
});

test('a batch, a sequence chosen, cross-attention, a matrix and a random X: all equal to Node', async () => {
  const { page, errors } = await openDemo(browser);
  const E = 8, h = 2;
  await page.fill('#E', String(E));
  await page.fill('#h', String(h));
  const lines = ['one two three four five', 'six seven'];
  await page.fill('#text', lines.join('\n'));
  await settle(page);
  // The second sequence: its maps show its rows, padding included and masked.
  await page.selectOption('#batch', '1');
  await settle(page);
  assert.deepEqual(await page.$$eval('#keys .tok', (b) => b.map((x) => [x.textContent, x.disabled])),
    [['six', false], ['seven', false], ['⟨pad⟩', true], ['⟨pad⟩', true], ['⟨pad⟩', true]]);
  const emb = embedLines(lines, E);
  let node = await nodeRun({ E, h, X: emb.data, dims: emb.dims, mask: Array.from(emb.padding), maskDims: [2, 5] });
  let run = await lastRun(page);
  assert.deepEqual(run.result.output, node.output);
  let cell = await hoverCell(page, figure(page, 'head-weights', 1), 1, 0);
  assert.equal(cell.value, node.weights[at(node.weightsDims, 1, 1, 1, 0)], cell.text);
  cell = await hoverCell(page, figure(page, 'output'), 3, 5);
  assert.equal(cell.value, node.output[at(node.outputDims, 1, 3, 5)], cell.text);

  // Cross-attention: keys and values from a second text (one line shared by both sequences).
  await page.check('#cross');
  await page.fill('#key-text', 'alpha beta gamma');
  await settle(page);
  const kemb = embedLines(['alpha beta gamma', 'alpha beta gamma'], E);
  node = await nodeRun({ E, h, X: emb.data, dims: emb.dims, key: kemb.data, keyDims: kemb.dims, mask: Array(6).fill(0), maskDims: [2, 3] });
  run = await lastRun(page);
  assert.deepEqual(run.input.key, Array.from(kemb.data));
  assert.deepEqual(run.result.weightsDims, [2, h, 5, 3]);
  assert.deepEqual(run.result.output, node.output);
  assert.deepEqual(run.result.weights, node.weights);
  cell = await hoverCell(page, figure(page, 'head-weights', 0), 0, 2);
  assert.match(cell.text, /key 2 “gamma”/);
  assert.equal(cell.value, node.weights[at(node.weightsDims, 1, 0, 0, 2)]);
  await page.uncheck('#cross');

  // A pasted JSON matrix [L, E]: E comes from it.
  await page.check('input[name="mode"][value="matrix"]');
  const matrix = [[1, 0, 0.5, 0], [0, 1, 0, -2], [3, 0, 1, 0]];
  await page.fill('#matrix', JSON.stringify(matrix));
  await settle(page);
  assert.equal(await page.inputValue('#E'), '4');
  node = await nodeRun({ E: 4, h, X: matrix.flat(), dims: [1, 3, 4], mask: [0, 0, 0], maskDims: [1, 3] });
  run = await lastRun(page);
  assert.deepEqual(run.result.output, node.output);
  assert.deepEqual(run.result.concat, node.concat);

  // A random X from a seed.
  await page.check('input[name="mode"][value="random"]');
  await page.fill('#rand-seed', '11');
  await page.fill('#rand-len', '6');
  await settle(page);
  assert.equal(await page.inputValue('#E'), String(E), 'E typed before the matrix comes back');
  const X = randomMatrix(11, 6, E);
  node = await nodeRun({ E, h, X, dims: [1, 6, E], mask: Array(6).fill(0), maskDims: [1, 6] });
  run = await lastRun(page);
  assert.deepEqual(run.input.X, Array.from(X));
  assert.deepEqual(run.result.output, node.output);
  assert.deepEqual(run.result.heads, node.heads);
  assert.deepEqual(errors, []);
  await page.close();
});

test('phone width (390 px): no horizontal page scroll, every stage shown', async () => {
  const { page, errors } = await openDemo(browser, { width: 390, height: 844 });
  await page.fill('#text', 'Attention lets every token look at every other token');
  await settle(page);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px`);
  assert.equal(await figure(page, 'head-weights').count(), 4);
  // Every heatmap fits the phone's width.
  const widest = await page.$$eval('figure.hm canvas', (cs) => Math.max(...cs.map((c) => c.getBoundingClientRect().right)));
  assert.ok(widest <= 390, `a heatmap reaches x = ${widest}`);
  await page.screenshot({ path: artifact('demo-phone.png') });
  await page.screenshot({ path: artifact('demo-phone-full.png'), fullPage: true });
  assert.deepEqual(errors, []);
  await page.close();
});

test('re-render time for L = 32, E = 64, h = 8 (logged, not asserted)', async (t) => {
  const { page, errors } = await openDemo(browser);
  await page.fill('#E', '64');
  await page.fill('#h', '8');
  const words = Array.from({ length: 32 }, (_, i) => `w${i}`);
  await page.fill('#text', words.join(' '));
  await settle(page);
  const run = await lastRun(page);
  assert.deepEqual(run.input.dims, [1, 32, 64]);
  assert.deepEqual(run.result.weightsDims, [1, 8, 32, 32]);
  const times = [];
  for (let i = 0; i < 6; i++) {
    // Alternate edits that each need a new forward pass and a full redraw.
    if (i % 2 === 0) await page.click('#causal');
    else await page.locator(`#keys .tok[data-index="${i}"]`).click();
    await settle(page);
    times.push(Number(await page.getAttribute('#app', 'data-render-ms')));
  }
  const sorted = [...times].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  t.diagnostic(`re-render L=32 E=64 h=8: ${times.map((x) => x.toFixed(1)).join(', ')} ms (median ${median.toFixed(1)} ms)`);
  await page.screenshot({ path: artifact('demo-desktop-L32.png'), fullPage: true });
  assert.deepEqual(errors, []);
  await page.close();
});
