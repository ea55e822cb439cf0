// Run by init_wasm.test.js in a process of its own (init loads once per
// process): init with the `wasm` form named by argv[2], then one forward
// pass. Prints { build, loadedFrom, output } or { error }.
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { init, capabilities, MultiheadAttention } from '../../dist/index.js';

const file = fileURLToPath(new URL('../../dist/mha-core.wasm', import.meta.url));
const forms = {
  bytes: () => readFileSync(file),
  arrayBuffer: () => { const b = readFileSync(file); return b.buffer.slice(b.byteOffset, b.byteOffset + b.length); },
  url: () => pathToFileURL(file),
  href: () => ({ href: pathToFileURL(file).href }),
  string: () => pathToFileURL(file).href,
  response: () => new Response(readFileSync(file)),
  garbage: () => new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 99, 99]),
  missing: () => pathToFileURL(`${file}.missing`),
};
const report = {};
try {
  await init({ wasm: forms[process.argv[2]](), simd: 'strict' });
} catch (err) {
  report.error = { name: err.constructor.name, message: err.message };
  // A failed load may be retried: the package's own .wasm then loads.
  await init({ threads: 1, simd: 'strict' });
}
const mha = await MultiheadAttention.create({ embedDim: 8, numHeads: 2, seed: 1 });
const out = mha.forward({ data: new Float32Array(16).fill(0.5), dims: [2, 8] }).output.data;
const { build, loadedFrom } = capabilities();
process.stdout.write(JSON.stringify({ ...report, build, loadedFrom, output: Array.from(out) }));
