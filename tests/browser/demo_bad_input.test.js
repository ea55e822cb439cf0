// Bad input in the demo page: each gets a clear message next to its field, and
// the page never goes blank: it keeps showing the last good result until the
// input is fixed. A PyTorch state_dict file that fits is used; one that does
// not fit shows the package's own message.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { MultiheadAttention } from '../../dist/index.js';
import { embedLines } from '../../web/embeddings.js';
import { openBrowser, artifactsDir } from './browser.js';
import { openDemo, settle, lastRun, nodeRun, figure, hoverCell, at } from './demo_page.js';
import { fileURLToPath } from 'node:url';

let browser;
before(async () => { browser = await openBrowser(); });
after(async () => { await browser?.close(); });

// The message next to a field, the page's state, and whether the last good result is still on screen.
async function check(page, field, pattern, goodOutput) {
  await settle(page);
  const msg = await page.textContent(`#${field}-msg`);
  assert.match(msg, pattern, `message next to #${field}`);
  assert.equal(await page.getAttribute(`#${field}`, 'aria-invalid'), 'true');
  // The message sits next to its field: within 120 px below it.
  const [f, m] = await Promise.all([page.locator(`#${field}`).boundingBox(), page.locator(`#${field}-msg`).boundingBox()]);
  assert.ok(m.y >= f.y && m.y - (f.y + f.height) < 120, `#${field}-msg is not next to #${field}`);
  assert.equal(await page.getAttribute('#app', 'data-state'), 'stale');
  assert.match(await page.textContent('#status'), /last good result/);
  assert.ok(await figure(page, 'head-weights').count() > 0, 'the heads are gone');
  assert.ok(await figure(page, 'output').locator('canvas').isVisible(), 'the output is gone');
  assert.deepEqual((await lastRun(page)).result.output, goodOutput, 'the result shown changed');
}

async function fix(page) {
  await settle(page);
  assert.equal(await page.getAttribute('#app', 'data-state'), 'ready', await page.textContent('#status'));
}

test('E % h ≠ 0, an empty sentence, an over-long L, bad matrices: messages next to the field, last result kept', async () => {
  const { page, errors } = await openDemo(browser);
  await page.fill('#E', '10');
  await page.fill('#h', '2');
  await fix(page);
  const good = (await lastRun(page)).result.output;

  // E % h ≠ 0 is explained, with the head counts that work.
  await page.fill('#h', '3');
  await check(page, 'h', /E = 10 cannot be split into 3 heads of equal width.*Try h = 1, 2, 5 or 10\./, good);
  assert.equal(await page.getAttribute('#E', 'aria-invalid'), 'true');
  await page.screenshot({ path: fileURLToPath(new URL('demo-bad-heads.png', artifactsDir)) });
  await page.fill('#h', '5');
  await fix(page);
  const good5 = (await lastRun(page)).result.output;
  assert.notDeepEqual(good5, good);

  await page.fill('#E', '0');
  await check(page, 'E', /E must be from 1 to 512, got 0/, good5);
  await page.fill('#E', 'ten');
  await check(page, 'E', /E must be a whole number/, good5);
  await page.fill('#E', '10');
  await fix(page);

  await page.fill('#text', '   \n  ');
  await check(page, 'text', /The sentence is empty/, good5);
  const long = Array.from({ length: 300 }, (_, i) => `t${i}`).join(' ');
  await page.fill('#text', `short line\n${long}`);
  await check(page, 'text', /Line 2 has 300 tokens; this page caps L at 256/, good5);
  await page.fill('#text', 'fixed again');
  await fix(page);
  const good2 = (await lastRun(page)).result.output;

  await page.check('input[name="mode"][value="matrix"]');
  await page.fill('#matrix', '1, 2\n3, x');
  await check(page, 'matrix', /"x" at row 2, column 2 is not a number/, good2);
  await page.fill('#matrix', '1, 2, 3\n4, 5');
  await check(page, 'matrix', /Row 2 has 2 values but row 1 has 3/, good2);
  await page.fill('#matrix', '[[1, 2], [3, 4]');
  await check(page, 'matrix', /not valid JSON/, good2);
  await page.fill('#matrix', '[[1, 2, 3], [3, 4, 5]]');  // E = 3 now, h = 5 does not divide it
  await check(page, 'h', /E = 3 cannot be split into 5 heads.*Try h = 1 or 3\./, good2);
  await page.fill('#h', '3');
  await fix(page);

  await page.check('input[name="mode"][value="random"]');
  await page.fill('#rand-len', '1000');
  await check(page, 'rand-len', /caps L at 256/, (await lastRun(page)).result.output);
  await page.fill('#rand-len', '5');
  await page.fill('#h', '2');
  await fix(page);

  // Cross-attention: key/value lines must be one, or one per sequence.
  await page.check('input[name="mode"][value="text"]');
  await page.fill('#text', 'a b\nc d\ne f');
  await page.check('#cross');
  await page.fill('#key-text', 'x y\nz w');
  await settle(page);
  assert.match(await page.textContent('#key-text-msg'), /2 key\/value lines for 3 sequences/);
  assert.equal(await page.getAttribute('#app', 'data-state'), 'stale');
  await page.fill('#key-text', 'x y');
  await fix(page);

  // Never blank: the page has its text and every section.
  assert.ok((await page.innerText('body')).length > 500);
  assert.deepEqual(errors, []);
  await page.close();
});

test('a state_dict JSON file: one that fits is used, others show the reason next to the file field', async () => {
  const { page, errors } = await openDemo(browser);
  const E = 16, h = 4;
  await page.fill('#E', String(E));
  await page.fill('#h', String(h));
  await page.fill('#text', 'weights from a file');
  await fix(page);
  const good = (await lastRun(page)).result.output;
  const upload = (name, text) => page.setInputFiles('#state-file', { name, mimeType: 'application/json', buffer: Buffer.from(text) });

  await upload('broken.json', '{"in_proj_weight": [1, 2,');
  await check(page, 'state-file', /not valid JSON/, good);
  await upload('words.json', '{"in_proj_weight": [[1, "two"]]}');
  await check(page, 'state-file', /'in_proj_weight'\[0\]\[1\] is "two", not a finite number/, good);
  // Names and sizes that do not fit: the package's message, as it is.
  await upload('small.json', JSON.stringify({ in_proj_weight: [[1, 2], [3, 4]], in_proj_bias: [0], 'out_proj.weight': [1], 'out_proj.bias': [0], extra: [1] }));
  await check(page, 'state-file', /loadStateDict: 'in_proj_weight' must have 768 values \(shape \[48, 16\]\), got 4.*unexpected key 'extra'/, good);

  // A state_dict as PyTorch would save it (nested lists), from a layer made in Node.
  const source = await MultiheadAttention.create({ embedDim: E, numHeads: h, seed: 1234 });
  const dict = source.stateDict();
  source.dispose();
  const nested = (t) => (t.dims.length === 2
    ? Array.from({ length: t.dims[0] }, (_, r) => Array.from(t.data.subarray(r * t.dims[1], (r + 1) * t.dims[1])))
    : Array.from(t.data));
  await upload('layer.json', JSON.stringify(Object.fromEntries(Object.entries(dict).map(([k, v]) => [k, nested(v)]))));
  await fix(page);
  assert.equal(await page.textContent('#state-file-msg'), '');
  const emb = embedLines(['weights from a file'], E);
  const node = await nodeRun({ E, h, stateDict: Object.fromEntries(Object.entries(dict).map(([k, v]) => [k, v.data])), X: emb.data, dims: emb.dims, mask: [0, 0, 0, 0], maskDims: [1, 4] });
  const run = await lastRun(page);
  assert.equal(run.config.weights, 'file');
  assert.deepEqual(run.result.output, node.output);
  assert.notDeepEqual(run.result.output, good);
  const cell = await hoverCell(page, figure(page, 'head-weights', 3), 2, 1);
  assert.equal(cell.value, node.weights[at(node.weightsDims, 0, 3, 2, 1)]);

  // A safetensors file (GPT-2 layout, written by PyTorch): the page loads its
  // attention layer through the package, numbers as fromSafetensors gives them.
  const gpt2 = readFileSync(new URL('../fixtures/safetensors/gpt2_attention.safetensors', import.meta.url));
  await page.setInputFiles('#state-file', { name: 'gpt2.safetensors', mimeType: 'application/octet-stream', buffer: gpt2 });
  await fix(page);
  assert.equal(await page.textContent('#state-file-msg'), '');
  const fromFile = await MultiheadAttention.fromSafetensors(gpt2, { numHeads: h, prefix: 'h.0.attn.' });
  const gpt2Dict = Object.fromEntries(Object.entries(fromFile.stateDict()).map(([k, v]) => [k, v.data]));
  fromFile.dispose();
  const viaNode = await nodeRun({ E, h, stateDict: gpt2Dict, X: emb.data, dims: emb.dims, mask: [0, 0, 0, 0], maskDims: [1, 4] });
  assert.deepEqual((await lastRun(page)).result.output, viaNode.output);
  await page.setInputFiles('#state-file', { name: 'junk.safetensors', mimeType: 'application/octet-stream', buffer: Buffer.from('not a file') });
  await check(page, 'state-file', /safetensors: the header claims/, viaNode.output);

  // The same file no longer fits a layer of another width: the package's message again.
  await upload('layer.json', JSON.stringify(Object.fromEntries(Object.entries(dict).map(([k, v]) => [k, nested(v)]))));
  await fix(page);
  await page.fill('#E', '8');
  await check(page, 'state-file', /loadStateDict: .*must have/, node.output);
  // Back to seeded weights.
  await page.check('input[name="weights"][value="seeded"]');
  await fix(page);
  assert.deepEqual(errors, []);
  await page.close();
});
