// Helpers of the demo-page tests: open the page, wait for it to settle, read
// the values it shows, and compute the same thing in Node with the package, so
// the page is always checked against an independent run (never against itself).
import { readFileSync } from 'node:fs';

import { MultiheadAttention, Tensor } from '../../dist/index.js';

/** Opens the demo page at the given viewport and waits for its first result. */
export async function openDemo(browser, { width = 1280, height = 900 } = {}) {
  const page = await browser.context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
  await page.setViewportSize({ width, height });
  await page.goto(browser.url);
  await page.waitForFunction(() => document.getElementById('app').dataset.state !== 'loading', null, { timeout: 15000 });
  await settle(page);
  return { page, errors };
}

/**
 * Waits until every scheduled update of the page has run: the page holds
 * aria-busy="true" on its results container while an update is due, running
 * or waiting for a file.
 */
export function settle(page) {
  return page.waitForFunction(() => document.getElementById('app').getAttribute('aria-busy') === 'false', null, { timeout: 15000 });
}

/** What the page's "Export JSON" button downloads: the last good run, whole. */
export async function exportRun(page) {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export')]);
  return JSON.parse(readFileSync(await download.path(), 'utf8'));
}

/** The page's last good run, as plain arrays, read from its export. */
export async function lastRun(page) {
  const doc = await exportRun(page);
  const { config, forwardOptions: o, input, output } = doc;
  return {
    config: { ...config, weights: { seeded: 'seeded', state_dict: 'file', checkpoint: 'checkpoint' }[config.weights.source] },
    layer: config.layer, positions: o.positions?.data ?? null,
    input: { X: input.query.data, dims: input.query.dims, key: input.key?.data ?? null, keyDims: input.key?.dims ?? null },
    options: { keyPaddingMask: o.keyPaddingMask.data, maskDims: o.keyPaddingMask.dims, isCausal: o.isCausal, fullyMaskedRows: o.fullyMaskedRows },
    result: {
      output: output.output.data, outputDims: output.output.dims,
      weights: output.weightsPerHead.data, weightsDims: output.weightsPerHead.dims,
      average: output.weightsAverage.data, averageDims: output.weightsAverage.dims,
      heads: output.heads.data, headsDims: output.heads.dims,
      concat: output.concat.data, concatDims: output.concat.dims,
    },
  };
}

/**
 * The package in Node: creates the layer, runs the same two forward passes the
 * page runs (per-head with heads and concat; averaged), returns plain arrays.
 */
export async function nodeRun({ E, h, seed = 0, bias = true, addBiasKV = false, addZeroAttn = false, stateDict = null,
  decoder = {}, layer = null, positions = null,
  X, dims, key = null, keyDims = null, mask = null, maskDims = null, isCausal = false, fullyMaskedRows = 'zero' }) {
  // `layer`: a layer made by the caller (a checkpoint's), used as it is and not disposed.
  const mha = layer ?? await MultiheadAttention.create({ embedDim: E, numHeads: h, seed, bias, addBiasKV, addZeroAttn, ...decoder });
  try {
    if (stateDict) mha.loadStateDict(stateDict);
    const q = new Tensor(Float32Array.from(X), dims);
    const kv = key ? new Tensor(Float32Array.from(key), keyDims) : null;
    const options = { isCausal, fullyMaskedRows };
    if (positions) options.positions = { data: Int32Array.from(positions), dims: [dims[0], dims[1]] };
    if (mask) options.keyPaddingMask = { data: Uint8Array.from(mask), dims: maskDims };
    const r = mha.forward(q, kv, kv, { ...options, needWeights: 'per-head', returnHeads: true, returnConcat: true });
    const avg = mha.forward(q, kv, kv, { ...options, needWeights: 'average' });
    const arr = (t) => Array.from(t.data);
    return {
      output: arr(r.output), outputDims: r.output.dims,
      weights: arr(r.weights), weightsDims: r.weights.dims,
      heads: arr(r.heads), headsDims: r.heads.dims,
      concat: arr(r.concat), concatDims: r.concat.dims,
      average: arr(avg.weights), averageDims: avg.weights.dims,
    };
  } finally {
    if (!layer) mha.dispose();
  }
}

/** A row-major index helper: at(dims, i, j, …). */
export function at(dims, ...idx) {
  let k = 0;
  for (let a = 0; a < dims.length; a++) k = k * dims[a] + idx[a];
  return k;
}

/** The heatmap figure locator for a kind (and head). */
export function figure(page, kind, head = null) {
  return page.locator(head == null ? `figure[data-kind="${kind}"]` : `figure[data-kind="${kind}"][data-head="${head}"]`);
}

/**
 * Hovers cell (r, c) of a heatmap and returns what its readout shows:
 * { row, col, value (the exact float32, as a number), text }.
 */
export async function hoverCell(page, fig, r, c) {
  const canvas = fig.locator('canvas');
  await canvas.scrollIntoViewIfNeeded();
  const g = await canvas.evaluate((cv) => ({ ...cv.dataset }));
  const cell = Number(g.cell);
  await canvas.hover({ position: { x: Number(g.ox) + c * cell + cell / 2, y: Number(g.oy) + r * cell + cell / 2 } });
  return readout(fig);
}

/** Focuses a heatmap and moves its keyboard cursor to (r, c) with the arrow keys. */
export async function keyboardCell(page, fig, r, c) {
  const canvas = fig.locator('canvas');
  await page.mouse.move(0, 0);  // no hover: the readout follows the keyboard cursor
  await canvas.focus();
  await page.keyboard.press('PageUp');
  await page.keyboard.press('Home');
  for (let i = 0; i < r; i++) await page.keyboard.press('ArrowDown');
  for (let i = 0; i < c; i++) await page.keyboard.press('ArrowRight');
  return readout(fig);
}

// A heatmap's readout line: its own, or the one its head card shares (named by data-readout).
async function readout(fig) {
  const d = await fig.evaluate((f) => {
    const el = document.getElementById(f.dataset.readout);
    return { ...el.dataset, text: el.textContent };
  });
  return { row: Number(d.row), col: Number(d.col), value: Math.fround(Number(d.value)), raw: d.value, text: d.text };
}
