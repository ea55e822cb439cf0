// A page bundled by Vite (the repository's vite, run on a fresh project whose
// node_modules holds the installed tarball) finds the package's .wasm files
// and its pthread worker through `new URL(..., import.meta.url)`, emits them,
// and the built page runs in Debian's Chromium: the threaded build when the
// server sends the cross-origin-isolation headers, the single-threaded build
// (saying why) when it does not. Both compute Node's numbers bit for bit.
// The dev server (unbundled, with dependency pre-bundling) is checked too.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

import {
  repoRoot,
  makeConsumer, run, describeRun, viteBin, serveStatic, openChromium, probePage, describeLog,
  pageModuleSource, referenceProbe, assertSameResults,
} from './consumer.js';

let consumer, browser, outDir, build, devServer;
const sha = (bytes) => createHash('sha256').update(bytes).digest('hex');
const filesUnder = (dir) => readdirSync(dir, { recursive: true, withFileTypes: true })
  .filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath ?? e.path, e.name)));

before(async () => {
  consumer = await makeConsumer('vite');
  // The app: an HTML entry and a module importing the package by its name.
  writeFileSync(join(consumer.dir, 'index.html'), `<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>mha-wasm under Vite</title></head>
<body><script type="module" src="./main.js"></script></body></html>
`);
  writeFileSync(join(consumer.dir, 'main.js'), pageModuleSource('mha-wasm'));
  // The README's vite.config.js, so that the documented settings are the
  // tested ones (module workers need worker.format 'es').
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const block = /```\n(\/\/ vite\.config\.js\n[\s\S]*?)```/.exec(readme);
  assert.ok(block, 'README.md has no ``` block starting with "// vite.config.js"');
  writeFileSync(join(consumer.dir, 'vite.config.js'), block[1]);
  outDir = join(consumer.dir, 'vite-dist');
  build = await run(process.execPath, [viteBin, 'build', consumer.dir, '--outDir', outDir, '--emptyOutDir'],
    { cwd: consumer.dir, timeout: 120_000 });
  assert.equal(build.code, 0, describeRun('vite build', build));
  browser = await openChromium();
});

after(async () => {
  await devServer?.close();  // when its test timed out before closing it
  await browser?.close();
  consumer?.cleanup();
});

test('vite build finds every build\'s .wasm and the pthread workers of the package and emits them', { timeout: 60_000 }, () => {
  const files = filesUnder(outDir);
  const emitted = new Map(files.filter((f) => f.endsWith('.wasm')).map((f) => [sha(readFileSync(join(outDir, f))), f]));
  const browserWasm = ['mha-core.wasm', 'mha-core-mt.wasm', 'mha-core-relaxed.wasm', 'mha-core-relaxed-mt.wasm'].map((wasm) => {
    const want = sha(readFileSync(join(consumer.packageDir, 'dist', wasm)));
    assert.ok(emitted.has(want), `vite did not emit the package's ${wasm} (emitted: ${files.join(', ')})\n${build.stdout}`);
    return want;
  });
  const extra = [...emitted].filter(([hash]) => !browserWasm.includes(hash)).map(([, f]) => f);
  assert.deepEqual(extra, [], 'the bundle carries a .wasm no build loads');
  const js = files.filter((f) => f.endsWith('.js'));
  const code = js.map((f) => readFileSync(join(outDir, f), 'utf8')).join('\n');
  // The emitted names (content-hashed) are what the bundle fetches.
  for (const f of emitted.values()) assert.ok(code.includes(f.split('/').pop()), `no bundle refers to ${f}`);
  // The threaded builds' workers run their own glue, emitted as worker chunks.
  for (const name of ['mha-core-mt', 'mha-core-relaxed-mt'])
    assert.ok(js.some((f) => f.includes(name)), `vite emitted no chunk for ${name} (emitted: ${files.join(', ')})`);
});

test('the Vite-built page, served cross-origin isolated, loads the threaded build and computes the in-repo dist\'s numbers bit for bit', { timeout: 90_000 }, async () => {
  const server = await serveStatic(outDir, { isolated: true });
  try {
    // threads: 2, not 'auto', so the expectation does not depend on the machine's core count.
    const { value, error, log } = await probePage(browser, `${server.origin}/`, { threads: 2 });
    const diagnostics = describeLog(log, server.requests);
    assert.ifError(error ? new Error(`${error.message}\n${diagnostics}`) : null);
    const caps = value.capabilities;
    assert.equal(caps.crossOriginIsolated, true, diagnostics);
    assert.match(caps.build, /^(simd|relaxed)-threads$/,
      `the threaded build did not run under Vite; capabilities().reason: ${caps.reason}\n${diagnostics}`);
    assert.equal(caps.threads, 2, caps.reason);
    // The pool's workers are Vite's emitted worker chunk, and they loaded.
    assert.ok(log.workers.length >= 1, `no worker started\n${diagnostics}`);
    assert.ok(log.workers.every((u) => /\/assets\/mha-core(-relaxed)?-mt-[^/]*\.js$/.test(u)), `unexpected worker scripts: ${log.workers.join(', ')}`);
    assert.deepEqual(log.pageErrors, [], diagnostics);
    assert.deepEqual(server.requests.filter((r) => r.status !== 200), [], diagnostics);
    assert.deepEqual(value.results[0].output.dims, [3, 4, 16]);
    assertSameResults(value.results, (await referenceProbe()).results, 'Vite page, threaded build, vs dist/index.js in Node');
  } finally {
    await server.close();
  }
});

test('the Vite-built page, served without cross-origin isolation, runs the single-threaded build and says why', { timeout: 90_000 }, async () => {
  const server = await serveStatic(outDir, { isolated: false });
  try {
    const { value, error, log } = await probePage(browser, `${server.origin}/`, { threads: 2 });
    const diagnostics = describeLog(log, server.requests);
    assert.ifError(error ? new Error(`${error.message}\n${diagnostics}`) : null);
    const caps = value.capabilities;
    assert.equal(caps.crossOriginIsolated, false);
    assert.equal(caps.threadsAvailable, false);
    assert.match(caps.build, /^(simd|relaxed)$/, caps.reason);
    assert.equal(caps.threads, 1);
    assert.match(caps.reason, /SharedArrayBuffer/);
    assert.match(caps.reason, /Cross-Origin-Opener-Policy: same-origin/);
    assert.match(caps.reason, /Cross-Origin-Embedder-Policy: require-corp/);
    assert.deepEqual(log.workers, [], 'the single-threaded build started workers');
    assert.deepEqual(log.pageErrors, [], diagnostics);
    // Only the single-threaded .wasm is fetched: the threaded one is not needed.
    const fetched = server.requests.filter((r) => r.path.endsWith('.wasm')).map((r) => r.path);
    assert.equal(fetched.length, 1, `fetched: ${fetched.join(', ')}`);
    assert.match(fetched[0], /\/mha-core-[^/]*\.wasm$/);
    assert.doesNotMatch(fetched[0], /mha-core-mt/);
    assertSameResults(value.results, (await referenceProbe()).results, 'Vite page, single-threaded build, vs dist/index.js in Node');
  } finally {
    await server.close();
  }
});

test('the Vite dev server, configured by the README\'s vite.config.js, serves the package unbundled and runs the threaded build', { timeout: 90_000 }, async () => {
  // Development is where dependency pre-bundling moves modules away from
  // their .wasm and worker files; the package must survive it. The config is
  // the README's own block (written in before()).
  const configFile = join(consumer.dir, 'vite.config.js');
  const { createServer } = await import('vite');
  const server = devServer = await createServer({
    root: consumer.dir,
    configFile,
    logLevel: 'silent',
    server: { host: '127.0.0.1', port: 0, strictPort: false, hmr: false },
  });
  try {
    await server.listen();
    const url = server.resolvedUrls.local[0];
    const { value, error, log } = await probePage(browser, url, { threads: 2 });
    const diagnostics = describeLog(log);
    assert.ifError(error ? new Error(`${error.message}\n${diagnostics}`) : null);
    assert.match(value.capabilities.build, /^(simd|relaxed)-threads$/,
      `the threaded build did not run under the Vite dev server; capabilities().reason: ${value.capabilities.reason}\n${diagnostics}`);
    assert.ok(log.workers.length >= 1, diagnostics);
    assert.deepEqual(log.pageErrors, [], diagnostics);
    assertSameResults(value.results, (await referenceProbe()).results, 'Vite dev server page vs dist/index.js in Node');
  } finally {
    await server.close();
    devServer = null;
  }
});
