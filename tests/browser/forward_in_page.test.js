// The package runs in Chromium exactly as in Node: the demo page's forward
// pass, loaded through the public entry, gives bit-identical numbers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { MultiheadAttention, Tensor } from '../../dist/index.js';
import { openBrowser } from './browser.js';

let browser;
before(async () => { browser = await openBrowser(); });
after(async () => { await browser?.close(); });

test('the page serves with cross-origin isolation and runs a forward pass equal to Node\'s, bit for bit', async () => {
  const page = await browser.context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(browser.url);
  await page.waitForSelector('#result[data-state]');
  assert.equal(await page.getAttribute('#result', 'data-state'), 'done', await page.textContent('#result'));
  assert.equal(await page.evaluate(() => crossOriginIsolated), true);
  const fromPage = await page.evaluate(() => window.__mhaResult);

  const mha = await MultiheadAttention.create({ embedDim: 16, numHeads: 8, seed: 1 });
  const x = new Tensor(Float32Array.from({ length: 3 * 4 * 16 }, (_, i) => Math.sin(i)), [3, 4, 16]);
  const inNode = mha.forward(x).output;
  mha.dispose();
  assert.deepEqual(fromPage.dims, inNode.dims);
  assert.deepEqual(fromPage.output, Array.from(inNode.data));
  assert.deepEqual(errors, []);
  await page.close();
});
