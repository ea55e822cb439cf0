// Threads: Node loads the threaded build by default, any thread count gives
// the same bits, and threads: 1 loads the single-threaded build, which agrees
// with the threaded one bit for bit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { MultiheadAttention, capabilities, setThreads, init } from './helpers.js';

// Node 22 and later have relaxed SIMD, and 'auto' takes it.
const prefix = () => (capabilities().relaxedSimdAvailable ? 'relaxed' : 'simd');
import { digestOfStandardRun } from './standard_run.js';

test('Node loads the threaded build by default and says why', async () => {
  await init();
  const caps = capabilities();
  assert.equal(caps.build, `${prefix()}-threads`);
  assert.equal(caps.threadsAvailable, true);
  assert.ok(caps.threads >= 1 && caps.threads <= caps.maxThreads);
  assert.match(caps.reason, /'auto' found \d+ hardware threads/);
});

test('every thread count gives bit-identical results', async () => {
  const digests = [];
  for (const threads of [1, 2, 3, 1]) {
    const inUse = await setThreads(threads);
    assert.ok(inUse >= 1 && inUse <= Math.max(threads, 1));
    digests.push(await digestOfStandardRun(MultiheadAttention));
  }
  assert.equal(new Set(digests).size, 1, digests.join(' '));
  await setThreads(capabilities().maxThreads);
});

test('setThreads refuses what is not a positive integer', async () => {
  await assert.rejects(setThreads(0), /threads must be >= 1, got 0/);
  await assert.rejects(setThreads(1.5), /threads must be an integer, got number 1.5/);
});

test('threads: 1 loads the single-threaded build, which agrees with the threaded one bit for bit', async () => {
  const child = fileURLToPath(new URL('./single_thread_child.mjs', import.meta.url));
  const out = await new Promise((resolve, reject) =>
    execFile(process.execPath, [child], { timeout: 60000 }, (err, stdout, stderr) =>
      (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout))));
  const report = JSON.parse(out);
  assert.equal(report.build, prefix());
  assert.equal(report.threads, 1);
  assert.equal(report.reason, `'auto' found ${prefix() === 'relaxed' ? 'relaxed SIMD' : 'no relaxed SIMD here'}; threads: 1 was asked for`);
  assert.equal(report.digest, await digestOfStandardRun(MultiheadAttention));
});

test('init refuses unknown options and bad thread counts', async () => {
  await assert.rejects(init({ thread: 2 }), /unknown option 'thread'; did you mean 'threads'\?/);
  await assert.rejects(init({ threads: -1 }), /threads must be >= 1, got -1/);
});
