// Every build the package ships passes every PyTorch fixture, and within
// one build every thread count gives the same bits. The relaxed builds'
// fused multiply-adds may change the last bits against the SIMD128 builds
// (within the fixtures' tolerance), never between thread counts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { capabilities, init } from './helpers.js';

const child = fileURLToPath(new URL('./build_child.mjs', import.meta.url));
const runChild = (simd, threads) => new Promise((resolve, reject) =>
  execFile(process.execPath, [child, simd, String(threads)], { timeout: 120_000, maxBuffer: 1 << 24 },
    (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout)))));

await init();
const relaxedHere = capabilities().relaxedSimdAvailable;
const builds = [['strict', 1, 'simd'], ['strict', 2, 'simd-threads'], ['relaxed', 1, 'relaxed'], ['relaxed', 2, 'relaxed-threads']];

const reports = {};
for (const [simd, threads, build] of builds) {
  test(`the '${build}' build passes every PyTorch fixture and gives the same bits at every thread count`,
    { skip: simd === 'relaxed' && !relaxedHere ? 'this runtime has no relaxed SIMD' : false }, async () => {
      const report = await runChild(simd, threads);
      reports[build] = report;
      assert.equal(report.build, build, report.reason);
      assert.deepEqual(report.failures, []);
      const digests = Object.values(report.digests);
      assert.equal(new Set(digests).size, 1, JSON.stringify(report.digests));
      if (threads > 1) assert.ok(Object.keys(report.digests).length >= 2, `only ${Object.keys(report.digests)} thread counts ran`);
    });
}

test('the single-threaded and threaded variants of each instruction set agree bit for bit', () => {
  for (const [a, b] of [['simd', 'simd-threads'], ['relaxed', 'relaxed-threads']]) {
    if (!reports[a] || !reports[b]) continue;
    assert.equal(Object.values(reports[a].digests)[0], Object.values(reports[b].digests)[0], `${a} vs ${b}`);
  }
});
