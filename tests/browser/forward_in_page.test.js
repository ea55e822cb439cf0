// The package runs in Chromium exactly as in Node: the demo page, loading the
// package through its public entry (the import map's 'mha-wasm'), computes
// bit-identical numbers to the package in Node for the same input, which the
// test rebuilds itself from the sentence with the page's embedding module.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { embedLines, splitLines } from '../../web/embeddings.js';
import { openBrowser } from './browser.js';
import { openDemo, settle, lastRun, nodeRun } from './demo_page.js';

let browser;
before(async () => { browser = await openBrowser(); });
after(async () => { await browser?.close(); });

test('the page serves with cross-origin isolation and its forward pass equals Node\'s, bit for bit', async () => {
  const { page, errors } = await openDemo(browser);
  assert.equal(await page.evaluate(() => crossOriginIsolated), true);
  assert.equal(await page.getAttribute('#app', 'data-state'), 'ready', await page.textContent('#status'));

  // A batch of two lines of different lengths: padded, and the padding masked.
  const text = 'Bit for bit, the same numbers.\nIn Node too';
  await page.fill('#text', text);
  await page.fill('#E', '12');
  await page.fill('#h', '3');
  await page.fill('#seed', '42');
  await settle(page);
  assert.equal(await page.getAttribute('#app', 'data-state'), 'ready', await page.textContent('#status'));
  const run = await lastRun(page);

  // The test's own input: the same sentence embedded in Node.
  const emb = embedLines(splitLines(text), 12);
  assert.deepEqual(emb.dims, [2, 8, 12]);
  assert.deepEqual(run.input.dims, emb.dims);
  assert.deepEqual(run.input.X, Array.from(emb.data), 'X built in the page differs from X built in Node');
  const mask = Array.from(emb.padding);
  assert.deepEqual(mask.slice(8), [0, 0, 0, 1, 1, 1, 1, 1], 'the shorter line is padded');
  assert.deepEqual(run.options.keyPaddingMask, mask);

  const node = await nodeRun({ E: 12, h: 3, seed: 42, X: emb.data, dims: emb.dims, mask, maskDims: [2, 8] });
  assert.deepEqual(run.result.outputDims, [2, 8, 12]);
  assert.deepEqual(run.result.output, node.output);
  assert.deepEqual(run.result.weights, node.weights);
  assert.deepEqual(run.result.average, node.average);
  assert.deepEqual(run.result.heads, node.heads);
  assert.deepEqual(run.result.concat, node.concat);
  // A different seed gives different numbers: the comparison can fail.
  const other = await nodeRun({ E: 12, h: 3, seed: 43, X: emb.data, dims: emb.dims, mask, maskDims: [2, 8] });
  assert.notDeepEqual(run.result.output, other.output);

  assert.deepEqual(errors, []);
  await page.close();
});
