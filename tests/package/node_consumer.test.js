// The packed package, installed into a fresh project, works from Node the
// three ways a user's code can load it: an ES module, a CommonJS file through
// `await import()` (the documented way), and a plain `require()` where Node
// can require ES modules. Each runs as its own child process from the
// consumer project, so 'mha-wasm' resolves to node_modules, not to this tree,
// and each must exit by itself (idle pool workers may not keep Node alive).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { makeConsumer, runNode, describeRun, probe, referenceProbe, assertSameResults, nodeOfMajor } from './consumer.js';

let consumer;
before(async () => { consumer = await makeConsumer('node'); });
after(() => consumer?.cleanup());

const installedEntry = () => pathToFileURL(join(consumer.packageDir, 'dist', 'index.js')).href;

// Child scripts print one JSON line; anything else on stdout is a bug in them.
function parseReport(r, what) {
  assert.equal(r.code, 0, describeRun(what, r));
  return JSON.parse(r.stdout.trim().split('\n').at(-1));
}

test('an ES module imports { MultiheadAttention, Tensor } from the installed tarball and computes the in-repo dist\'s numbers bit for bit', { timeout: 60_000 }, async () => {
  const file = join(consumer.dir, 'esm-consumer.mjs');
  writeFileSync(file, `import { MultiheadAttention, Tensor, init, capabilities, version } from 'mha-wasm';
const probe = ${probe};
const report = await probe({ MultiheadAttention, Tensor, init, capabilities });
console.log(JSON.stringify({ resolved: import.meta.resolve('mha-wasm'), version, ...report }));
`);
  const report = parseReport(await runNode(consumer, file), 'the ESM consumer');

  // It really used the tarball's copy, not the working tree's.
  assert.equal(report.resolved, installedEntry());
  const installed = JSON.parse(readFileSync(join(consumer.packageDir, 'package.json'), 'utf8'));
  assert.equal(report.version, installed.version);

  // The teaching shape (B=3, L=4, E=16, H=8) and the dims of every result.
  const [teaching] = report.results;
  assert.deepEqual(teaching.case, { B: 3, L: 4, E: 16, H: 8, seed: 7 });
  assert.deepEqual(teaching.output.dims, [3, 4, 16]);
  assert.deepEqual(teaching.weights.dims, [3, 8, 4, 4]);
  assert.deepEqual(teaching.heads.dims, [3, 8, 4, 2]);
  assert.deepEqual(teaching.concat.dims, [3, 4, 16]);

  const reference = await referenceProbe();
  assertSameResults(report.results, reference.results, 'installed package in an ES module vs dist/index.js');
  // The comparison can fail: other numbers (the second case's) are told apart.
  const other = structuredClone(reference.results);
  other[0].output.data = reference.results[1].output.data;
  assert.throws(() => assertSameResults(report.results, other, 'mutated'), /output/);

  // Node has worker_threads and SharedArrayBuffer: 'auto' takes the threaded build when there are cores to use.
  const simd = report.capabilities.relaxedSimdAvailable ? 'relaxed' : 'simd';
  if (availableParallelism() > 1) assert.equal(report.capabilities.build, `${simd}-threads`, report.capabilities.reason);
  else assert.equal(report.capabilities.build, simd, report.capabilities.reason);
});

test('a CommonJS file loads the package with `await import(\'mha-wasm\')` and computes the same numbers', { timeout: 60_000 }, async () => {
  const file = join(consumer.dir, 'cjs-consumer.cjs');
  writeFileSync(file, `'use strict';
// CommonJS cannot use a static import; the package is an ES module, so it is loaded with import().
const probe = ${probe};
(async () => {
  const api = await import('mha-wasm');
  const report = await probe(api);
  console.log(JSON.stringify({ resolved: require.resolve('mha-wasm'), ...report }));
})().catch((err) => { console.error(err); process.exitCode = 1; });
`);
  const report = parseReport(await runNode(consumer, file), 'the CommonJS consumer');
  assert.equal(report.resolved, join(consumer.packageDir, 'dist', 'index.js'));
  assert.deepEqual(report.results[0].output.dims, [3, 4, 16]);
  assertSameResults(report.results, (await referenceProbe()).results, 'installed package from CommonJS vs dist/index.js');
});

test('require(\'mha-wasm\') works where Node can require ES modules, and fails with ERR_REQUIRE_ESM where it cannot', { timeout: 60_000 }, async () => {
  // Not the documented way (README: import()), but what a CommonJS user tries
  // first; this records which Node versions it works on with this package.
  const file = join(consumer.dir, 'cjs-require.cjs');
  writeFileSync(file, `'use strict';
let outcome;
try {
  const { MultiheadAttention, Tensor } = require('mha-wasm');
  outcome = { ok: true, exports: [typeof MultiheadAttention, typeof Tensor] };
} catch (err) {
  outcome = { ok: false, code: err.code, message: err.message };
}
console.log(JSON.stringify({ requireModule: Boolean(process.features.require_module), outcome }));
`);
  const report = parseReport(await runNode(consumer, file), 'require(\'mha-wasm\')');
  if (report.requireModule) assert.deepEqual(report.outcome, { ok: true, exports: ['function', 'function'] });
  else assert.equal(report.outcome.code, 'ERR_REQUIRE_ESM', report.outcome.message);
});

// The runtimes users have: Node 22 has relaxed SIMD and runs the same build
// as this suite's Node 24 (the same bits); Node 20 has none and runs the
// SIMD128 build, whose results differ from the relaxed one only in the last
// bits of a fused multiply-add.
for (const major of [20, 22]) {
  test(`the installed package runs on Node ${major}`, { timeout: 60_000 }, async () => {
    const file = join(consumer.dir, 'esm-consumer.mjs');
    writeFileSync(file, `import { MultiheadAttention, Tensor, init, capabilities } from 'mha-wasm';
const probe = ${probe};
console.log(JSON.stringify({ node: process.version, ...(await probe({ MultiheadAttention, Tensor, init, capabilities })) }));
`);
    const report = parseReport(await runNode(consumer, file, { node: nodeOfMajor(major) }), `Node ${major}`);
    assert.match(report.node, new RegExp(`^v${major}\\.`));
    const reference = await referenceProbe();
    if (report.capabilities.relaxedSimd === reference.capabilities.relaxedSimd) {
      assertSameResults(report.results, reference.results, `Node ${major} vs this suite's Node`);
    } else {
      assert.equal(major, 20, 'only Node 20 lacks relaxed SIMD');
      assert.equal(report.capabilities.build.startsWith('simd'), true, report.capabilities.reason);
      const a = Buffer.from(report.results[0].output.data, 'base64'), b = Buffer.from(reference.results[0].output.data, 'base64');
      const fa = new Float32Array(a.buffer, a.byteOffset, a.length / 4), fb = new Float32Array(b.buffer, b.byteOffset, b.length / 4);
      assert.equal(fa.length, fb.length);
      for (let i = 0; i < fa.length; i++) assert.ok(Math.abs(fa[i] - fb[i]) <= 1e-5 * (1 + Math.abs(fb[i])), `output[${i}]: ${fa[i]} vs ${fb[i]}`);
    }
  });
}
