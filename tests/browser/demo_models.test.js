// The demo page's "Trained models" mode, in Chromium:
//  - the logits and each head's new weights row the page shows, stepping the
//    committed weights one token at a time, equal PyTorch's (the fixtures of
//    scripts/train_demo.py: float64 on the committed float32 weights), read
//    from the mode's Export JSON and from the DOM;
//  - the induction head's learned behaviour is visible: on sequences with a
//    repeated segment it puts most weight on the letter after the earlier
//    copy (threshold from the model's JSON);
//  - a symbol outside the vocabulary gets a message next to the sequence,
//    and the page stays usable;
//  - phone width; the README's screenshot (MHA_UPDATE_DEMO_PNG=1 refreshes docs/demo-models.png).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, copyFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { mulberry32 } from '../../common/prng.js';
import { openBrowser, artifactsDir } from './browser.js';
import { openDemo } from './demo_page.js';

const fixtureOf = (name) => JSON.parse(readFileSync(new URL(`../fixtures/demo_models/${name}.json`, import.meta.url), 'utf8'));
const configOf = (name) => JSON.parse(readFileSync(new URL(`../../web/models/${name}.json`, import.meta.url), 'utf8'));
const artifact = (file) => fileURLToPath(new URL(file, artifactsDir));
const argmax = (v) => v.reduce((best, x, i) => (x > v[best] ? i : best), 0);

let browser;
before(async () => { browser = await openBrowser(); });
after(async () => { await browser?.close(); });

// Loading a model holds #models-app aria-busy="true"; stepping is synchronous.
function settle(page) {
  return page.waitForFunction(() => {
    const app = document.getElementById('models-app');
    return app.getAttribute('aria-busy') === 'false' && app.dataset.state !== 'loading' && app.dataset.state !== 'idle';
  }, null, { timeout: 15000 });
}

async function openModels(viewport = {}) {
  const { page, errors } = await openDemo(browser, viewport);
  // The mode switch, by keyboard: focus the checked radio, arrow to the next.
  await page.focus('input[name="page-mode"][value="playground"]');
  await page.keyboard.press('ArrowRight');
  await settle(page);
  assert.equal(await page.isVisible('#app'), false, 'the playground hides');
  return { page, errors };
}

async function pickModel(page, name) {
  await page.check(`input[name="tiny-model"][value="${name}"]`);
  await settle(page);
  assert.equal(await page.getAttribute('#models-app', 'data-state'), 'ready', await page.textContent('#models-status'));
}

// Reset is disabled while nothing is fed.
async function reset(page) {
  if (!(await page.isDisabled('#models-reset'))) await page.click('#models-reset');
}

async function exportSession(page) {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#models-export')]);
  return JSON.parse(readFileSync(await download.path(), 'utf8'));
}

// |got - want| <= atol + rtol * |want|, element by element.
function assertNear(got, want, { atol, rtol }, what) {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++)
    assert.ok(Math.abs(got[i] - want[i]) <= atol + rtol * Math.abs(want[i]), `${what}[${i}]: page ${got[i]} vs PyTorch ${want[i]}`);
}

// What the DOM shows for the newest step: each head's newest row (the cells' exact values), the predicted token, the cache length.
function shownStep(page) {
  return page.evaluate(() => ({
    rows: [...document.querySelectorAll('#models-heads .model-head')].map((card) => ({
      layer: Number(card.dataset.layer), head: Number(card.dataset.head),
      row: [...card.querySelectorAll('.cell.new:not(.future)')].map((c) => Math.fround(Number(c.dataset.weight))),
    })),
    prediction: Number(document.querySelector('#models-prediction li.best')?.dataset.token),
    cacheLength: Number(document.getElementById('models-cache').dataset.length),
  }));
}

for (const name of ['induction', 'reverse']) {
  test(`${name}: "Run to end" steps the committed weights through the cache; every step's logits and each head's new row equal PyTorch's`, async () => {
    const { page, errors } = await openModels();
    await pickModel(page, name);
    const fixture = fixtureOf(name);
    await page.uncheck('#models-feedback');
    for (const c of fixture.cases) {
      await page.fill('#models-text', c.text);
      await reset(page);
      await page.click('#models-run');
      const doc = await exportSession(page);
      assert.equal(doc.model.name, name);
      assert.deepEqual(doc.fed, c.tokens, `${c.text}: the tokens fed`);
      assert.equal(doc.steps.length, c.tokens.length);
      doc.steps.forEach((s, q) => {
        assert.equal(s.position, q);
        assert.equal(s.cacheLength, q + 1, 'the cache holds every token fed');
        assertNear(s.logits, c.logits[q], fixture.tolerance.logits, `${c.text} step ${q} logits`);
        assert.equal(s.prediction, argmax(c.logits[q]), `${c.text} step ${q} prediction`);
        s.weights.forEach((heads, layer) => heads.forEach((row, h) =>
          assertNear(row, c.weights[layer][h][q].slice(0, q + 1), fixture.tolerance.weights, `${c.text} step ${q} layer ${layer} head ${h}`)));
      });
      // The DOM shows the last step's numbers.
      const last = c.tokens.length - 1;
      const shown = await shownStep(page);
      assert.equal(shown.cacheLength, c.tokens.length);
      assert.equal(shown.prediction, argmax(c.logits[last]));
      for (const { layer, head, row } of shown.rows)
        assertNear(row, c.weights[layer][head][last], fixture.tolerance.weights, `${c.text} shown layer ${layer} head ${head}`);
    }
    assert.deepEqual(errors, []);
    await page.close();
  });
}

test('one token at a time by keyboard (Enter, →, Home, End): each step shows PyTorch\'s new rows and prediction; an edit keeps the shared prefix', async () => {
  const { page, errors } = await openModels();
  const fixture = fixtureOf('induction');
  const c = fixture.cases[0];
  await page.fill('#models-text', c.text);
  await page.press('#models-text', 'Enter');  // Enter in the sequence steps
  await page.focus('#models-step');
  for (let q = 0; q < c.tokens.length; q++) {
    if (q > 0) await page.keyboard.press(q % 2 ? 'ArrowRight' : 'n');
    const shown = await shownStep(page);
    assert.equal(shown.cacheLength, q + 1, `step ${q}: cache length`);
    assert.equal(shown.prediction, argmax(c.logits[q]), `step ${q}: prediction`);
    assert.equal(shown.rows.length, 4, 'two layers of two heads');
    for (const { layer, head, row } of shown.rows)
      assertNear(row, c.weights[layer][head][q].slice(0, q + 1), fixture.tolerance.weights, `step ${q} layer ${layer} head ${head}`);
  }
  assert.equal(await page.isDisabled('#models-step'), true, 'nothing left to feed');
  await page.keyboard.press('Home');
  assert.equal((await shownStep(page)).cacheLength, 0, 'Home resets');
  await page.locator('#models-run').focus();  // a disabled button cannot hold focus: Reset left the page's body focused
  await page.keyboard.press('End');
  const whole = await exportSession(page);
  assert.equal(whole.steps.length, c.tokens.length, 'End runs to the end');
  // Editing the sequence keeps the steps of the prefix it shares with what was fed (the cache is truncated, not refilled).
  await page.fill('#models-text', `${c.text.slice(0, 5)}q${c.text.slice(6)}`);
  const cut = await exportSession(page);
  assert.deepEqual(cut.steps, whole.steps.slice(0, 5));
  await page.click('#models-step');
  const stepped = await exportSession(page);
  assert.equal(stepped.steps[5].symbol, 'q');
  assert.equal(stepped.steps[5].cacheLength, 6);
  assert.deepEqual(errors, []);
  await page.close();
});

test('reverse, feeding the prediction back: the model writes the reversal and its end mark', async () => {
  const { page } = await openModels();
  await pickModel(page, 'reverse');
  assert.equal(await page.isChecked('#models-feedback'), true, 'on by default for the reverse model');
  await page.selectOption('#models-example', '31415926>');
  await page.click('#models-run');
  const doc = await exportSession(page);
  assert.equal(doc.fed.map((t) => doc.model.vocab[t]).join(''), '31415926>62951413.');
  assert.deepEqual(doc.steps.map((s) => s.generated), [...Array(9).fill(false), ...Array(9).fill(true)]);
  assert.equal(await page.locator('#models-cache .tok.gen').count(), 9);
  await page.close();
});

// As tests/js/demo_models.test.js: 32 letters, a segment of 5-12 letters at s1 repeated at s2 >= s1 + k.
function inductionSequence(next) {
  const below = (n) => Math.floor(next() * n), between = (lo, hi) => lo + below(hi - lo + 1);
  const tokens = Array.from({ length: 32 }, () => below(26));
  const k = between(5, 12), s1 = between(0, 32 - 2 * k), s2 = between(s1 + k, 32 - k);
  for (let j = 0; j < k; j++) tokens[s2 + j] = tokens[s1 + j];
  return { tokens, s1, s2, k };
}

test('induction head: on sequences with a repeated segment, most weight on the letter after the earlier copy', async () => {
  const { page, errors } = await openModels();
  const config = configOf('induction');
  const { layer, head } = config.heads.find((h) => h.role === 'induction');
  const { minWeight, minFraction } = config.behaviour.induction;
  const letters = (tokens) => tokens.map((t) => config.vocab[t]).join('');
  const next = mulberry32(2222);
  const weights = [];
  let shown = null;
  for (let n = 0; n < 12; n++) {
    const seq = inductionSequence(next);
    await page.fill('#models-text', letters(seq.tokens));
    await reset(page);
    await page.click('#models-run');
    const doc = await exportSession(page);
    for (let j = 0; j < seq.k; j++) {
      const q = seq.s2 + j;
      // Queries whose letter occurs exactly once before (in the first copy).
      if (seq.tokens.slice(0, q).filter((t) => t === seq.tokens[q]).length !== 1) continue;
      const w = doc.steps[q].weights[layer][head][seq.s1 + j + 1];
      weights.push(w);
      if (!shown && w >= minWeight) shown = { seq, q, target: seq.s1 + j + 1, w };
    }
  }
  const fraction = weights.filter((w) => w >= minWeight).length / weights.length;
  assert.ok(weights.length >= 40, `${weights.length} induction queries`);
  assert.ok(fraction >= minFraction, `${fraction} of ${weights.length} queries put >= ${minWeight} after the earlier copy; the model's JSON asks ${minFraction}`);

  // And the page shows it: that sequence up to that query, run; the induction
  // head's newest row peaks at the letter after the earlier copy.
  await page.fill('#models-text', letters(shown.seq.tokens.slice(0, shown.q + 1)));
  await page.click('#models-run');
  const card = page.locator(`.model-head[data-layer="${layer}"][data-head="${head}"]`);
  assert.match(await card.locator('.role').textContent(), /induction head/);
  assert.equal(await card.locator('.newrow').getAttribute('data-argmax'), String(shown.target));
  const cell = Number(await card.locator('.cell.new').nth(shown.target).getAttribute('data-weight'));
  assert.equal(Math.fround(cell), Math.fround(shown.w), 'the cell shows the exported weight');
  assert.ok(cell >= minWeight);
  assert.match(await page.textContent('#models-legend'), /induction head \(layer 1, head 1\): weight ≥ 0\.5 on its target in 85\.7 %/);
  assert.deepEqual(errors, []);
  await page.close();
});

test('a symbol outside the vocabulary: a message next to the sequence, the last valid sequence kept, the page usable', async () => {
  const { page, errors } = await openModels();
  await page.fill('#models-text', 'abcab');
  await page.click('#models-run');
  await page.fill('#models-text', 'abc1ab');
  const msg = await page.textContent('#models-text-msg');
  assert.match(msg, /'1' \(character 4\) is not in the vocabulary abcdefghijklmnopqrstuvwxyz/);
  assert.equal(await page.getAttribute('#models-text', 'aria-invalid'), 'true');
  const [f, m] = await Promise.all([page.locator('#models-text').boundingBox(), page.locator('#models-text-msg').boundingBox()]);
  assert.ok(m.y >= f.y && m.y - (f.y + f.height) < 60, 'the message sits under the field');
  assert.match(await page.textContent('#models-status'), /last valid sequence/);
  assert.equal((await exportSession(page)).steps.length, 5, 'the steps shown are kept');
  await page.screenshot({ path: artifact('demo-models-bad.png') });
  // Still usable: Reset and Step work on the last valid sequence; fixing the text clears the message.
  await page.click('#models-reset');
  await page.click('#models-step');
  assert.equal((await shownStep(page)).cacheLength, 1);
  await page.fill('#models-text', 'abcabd');
  assert.equal(await page.textContent('#models-text-msg'), '');
  assert.equal(await page.getAttribute('#models-text', 'aria-invalid'), null);
  await page.click('#models-run');
  assert.equal((await shownStep(page)).cacheLength, 6);
  // The other model refuses letters by the same rule.
  await pickModel(page, 'reverse');
  await page.fill('#models-text', '12x>');
  assert.match(await page.textContent('#models-text-msg'), /'x' \(character 3\) is not in the vocabulary/);
  // Longer than the positions the model learned (18): said, not cut silently.
  await page.fill('#models-text', '1234567890123456789');
  assert.match(await page.textContent('#models-text-msg'), /19 symbols; the model learned positions 0 … 17, so at most 18/);
  await page.fill('#models-text', '123>');
  assert.equal(await page.textContent('#models-text-msg'), '');
  assert.deepEqual(errors, []);
  await page.close();
});

test('phone width (390 px): no horizontal page scroll, the controls and every head shown', async () => {
  const { page, errors } = await openModels({ width: 390, height: 844 });
  await page.selectOption('#models-example', 'qwertyuiopqwertyuiop');
  for (let i = 0; i < 14; i++) await page.click('#models-step');
  assert.equal(await page.evaluate(() => document.documentElement.scrollWidth), 390, 'the page scrolls sideways');
  assert.equal(await page.locator('.model-head').count(), 4);
  for (const id of ['#models-step', '#models-run', '#models-reset', '#models-text'])
    assert.ok((await page.locator(id).boundingBox()).width > 0, `${id} shown`);
  // The training loss figure (docs/demo_models_loss.svg, served on its own) opens under the legend.
  await page.click('#models-app details summary');
  await page.waitForFunction(() => document.querySelector('img.loss').complete);
  assert.ok(await page.evaluate(() => document.querySelector('img.loss').naturalWidth) > 0, 'the loss curve loads');
  await page.screenshot({ path: artifact('demo-models-phone.png'), fullPage: true });
  assert.deepEqual(errors, []);
  await page.close();
});

test('the README screenshot: the induction model mid-sequence', async (t) => {
  const { page, errors } = await openModels({ width: 1280, height: 1400 });
  await page.selectOption('#models-example', 'qwertyuiopqwertyuiop');
  for (let i = 0; i < 15; i++) await page.click('#models-step');
  await page.mouse.move(0, 0);
  await page.screenshot({ path: artifact('demo-models.png') });
  if (process.env.MHA_UPDATE_DEMO_PNG === '1') {
    copyFileSync(artifact('demo-models.png'), fileURLToPath(new URL('../../docs/demo-models.png', import.meta.url)));
    t.diagnostic('docs/demo-models.png refreshed');
  }
  assert.deepEqual(errors, []);
  await page.close();
});
