// No bundler: a page whose `<script type="module">` imports the installed
// package straight from /node_modules/mha-wasm/dist/index.js, served as
// static files, runs a forward pass in Debian's Chromium. The package finds
// its .wasm (and, cross-origin isolated, the threaded glue its workers run)
// next to index.js by itself.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import {
  makeConsumer, serveStatic, openChromium, probePage, describeLog, pageModuleSource,
  referenceProbe, assertSameResults,
} from './consumer.js';

let consumer, browser;
before(async () => {
  consumer = await makeConsumer('plain-page');
  // The module is inline, as a hand-written page would have it.
  writeFileSync(join(consumer.dir, 'plain.html'), `<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>mha-wasm, no bundler</title></head>
<body><script type="module">
${pageModuleSource('/node_modules/mha-wasm/dist/index.js')}
</script></body></html>
`);
  browser = await openChromium();
});
after(async () => {
  await browser?.close();
  consumer?.cleanup();
});

// Only the package's own files, all found: nothing is fetched from elsewhere.
function assertServedFromPackage(requests, diagnostics) {
  const missing = requests.filter((r) => r.status !== 200);
  assert.deepEqual(missing, [], diagnostics);
  const outside = requests.map((r) => r.path).filter((p) => p !== '/plain.html' && !p.startsWith('/node_modules/mha-wasm/dist/'));
  assert.deepEqual(outside, [], 'the page fetched files from outside the package');
}

test('a plain module page imports /node_modules/mha-wasm/dist/index.js and runs the single-threaded build without cross-origin isolation', { timeout: 90_000 }, async () => {
  const server = await serveStatic(consumer.dir, { isolated: false });
  try {
    // No init() call: MultiheadAttention.create() loads with the default, threads: 'auto'.
    const { value, error, log } = await probePage(browser, `${server.origin}/plain.html`, {});
    const diagnostics = describeLog(log, server.requests);
    assert.ifError(error ? new Error(`${error.message}\n${diagnostics}`) : null);
    assert.match(value.capabilities.build, /^(simd|relaxed)$/, value.capabilities.reason);
    // Why: no SharedArrayBuffer here (or, on a one-core machine, nothing to share).
    assert.match(value.capabilities.reason, /SharedArrayBuffer|one hardware thread/);
    assert.deepEqual(value.results[0].output.dims, [3, 4, 16]);
    assert.deepEqual(log.pageErrors, [], diagnostics);
    assertServedFromPackage(server.requests, diagnostics);
    const wasm = `/node_modules/mha-wasm/dist/mha-core${value.capabilities.relaxedSimd ? '-relaxed' : ''}.wasm`;
    assert.ok(server.requests.some((r) => r.path === wasm), diagnostics);
    assertSameResults(value.results, (await referenceProbe()).results, 'plain page, single-threaded, vs dist/index.js in Node');
  } finally {
    await server.close();
  }
});

test('the same page served cross-origin isolated runs the threaded build, its workers loading the package\'s worker script', { timeout: 90_000 }, async () => {
  const server = await serveStatic(consumer.dir, { isolated: true });
  try {
    const { value, error, log } = await probePage(browser, `${server.origin}/plain.html`, { threads: 2 });
    const diagnostics = describeLog(log, server.requests);
    assert.ifError(error ? new Error(`${error.message}\n${diagnostics}`) : null);
    assert.match(value.capabilities.build, /^(simd|relaxed)-threads$/, `${value.capabilities.reason}\n${diagnostics}`);
    assert.equal(value.capabilities.threads, 2);
    assert.ok(log.workers.length >= 1, diagnostics);
    assert.ok(log.workers.every((u) => u === `${server.origin}/node_modules/mha-wasm/dist/mha-core${value.capabilities.relaxedSimd ? '-relaxed' : ''}-mt.mjs`), diagnostics);
    assert.deepEqual(log.pageErrors, [], diagnostics);
    assertServedFromPackage(server.requests, diagnostics);
    assertSameResults(value.results, (await referenceProbe()).results, 'plain page, threaded, vs dist/index.js in Node');
  } finally {
    await server.close();
  }
});

test('when the worker script cannot be fetched, the threaded load fails over or fails fast instead of hanging', {
  timeout: 60_000,
}, async () => {
  // What a Content-Security-Policy without worker-src, or a deploy that left
  // the worker file behind, does to a cross-origin-isolated page.
  const server = await serveStatic(consumer.dir, { isolated: true, refuse: (p) => p.endsWith('-mt.mjs') });
  try {
    const { value, error, log } = await probePage(browser, `${server.origin}/plain.html`, { threads: 2 }, { timeout: 10_000 });
    const diagnostics = describeLog(log, server.requests);
    if (error) {
      // Failing fast is acceptable when the error says what is missing; hanging is not.
      assert.doesNotMatch(error.message, /did not finish/, diagnostics);
      assert.match(error.message, /worker/i, diagnostics);
    } else {
      assert.match(value.capabilities.build, /^(simd|relaxed)$/, diagnostics);
      assert.match(value.capabilities.reason, /worker|threaded build failed/i);
    }
  } finally {
    await server.close();
  }
});

// Every build runs in Chromium and computes, bit for bit, what the same
// build computes in Node: SIMD128 and relaxed SIMD, one thread and two.
for (const simd of ['strict', 'relaxed'])
  for (const threads of [1, 2]) {
    test(`the ${simd === 'strict' ? 'SIMD128' : 'relaxed-SIMD'} build with ${threads} thread${threads > 1 ? 's' : ''} in Chromium computes what it computes in Node`, { timeout: 90_000 }, async () => {
      const server = await serveStatic(consumer.dir, { isolated: true });
      try {
        const { value, error, log } = await probePage(browser, `${server.origin}/plain.html`, { threads, simd });
        const diagnostics = describeLog(log, server.requests);
        assert.ifError(error ? new Error(`${error.message}\n${diagnostics}`) : null);
        const build = `${simd === 'strict' ? 'simd' : 'relaxed'}${threads > 1 ? '-threads' : ''}`;
        assert.equal(value.capabilities.build, build, value.capabilities.reason);
        assertSameResults(value.results, (await referenceProbe({ simd, threads: 1 })).results, `Chromium ${build} vs Node`);
      } finally {
        await server.close();
      }
    });
  }
