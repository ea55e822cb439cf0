// init({ wasm }) takes the .wasm in every documented form; bytes that are
// not a module, or a file that is not there, give an Error that says which
// build failed and why, and a later init() still loads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const child = fileURLToPath(new URL('./init_child.mjs', import.meta.url));
const runChild = (form) => new Promise((resolve, reject) =>
  execFile(process.execPath, [child, form], { timeout: 60_000 },
    (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout)))));

const reference = await runChild('bytes');

for (const form of ['bytes', 'arrayBuffer', 'url', 'href', 'string', 'response']) {
  test(`init({ wasm }) loads the module given as ${form}`, async () => {
    const r = await runChild(form);
    assert.equal(r.error, undefined, r.error?.message);
    assert.equal(r.build, 'simd');
    assert.equal(r.loadedFrom, 'init({ wasm })');
    assert.deepEqual(r.output, reference.output);
  });
}

for (const [form, pattern] of [['garbage', /'simd' WebAssembly module failed to load/], ['missing', /init\(\{ wasm \}\): could not read file:.*mha-core\.wasm\.missing: ENOENT/]]) {
  test(`init({ wasm }) with ${form} bytes rejects with a clear Error, and a later init() loads`, async () => {
    const r = await runChild(form);
    assert.ok(r.error, 'init did not reject');
    assert.equal(r.error.name, 'Error');
    assert.match(r.error.message, pattern);
    assert.doesNotMatch(r.error.message, /^Aborted/);
    assert.equal(r.loadedFrom, 'the package (next to index.js)');
    assert.deepEqual(r.output, reference.output);
  });
}
