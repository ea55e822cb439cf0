// The Node suite's tests of the core through the public API, run against the
// WebAssembly module built under AddressSanitizer + UBSan (scripts/build.sh:
// build/wasm-asan, a test-only build that never reaches dist/).
//
//   node tests/wasm_asan/run.mjs        (scripts/test.sh runs it on Node 24)
//
// The test files import the package as '../../dist/index.js' (helpers.js), so
// they are run unchanged from copies in build/wasm-asan/tests/, where that
// path is build/wasm-asan/dist/index.js; the fixtures and package.json (whose
// version api.test.js checks) are copied next to them the same way.
// build/wasm-asan/dist holds only the single-threaded SIMD128 build, which
// single_build.mjs, preloaded into every Node process through NODE_OPTIONS
// (so into gc_child.mjs too), loads before any test runs.
//
// Emscripten's sanitizers print their report to stderr and stop the program
// (proc_exit, which in Node sets process.exitCode). Since a test may catch the
// error that follows, or a child's stderr may be dropped, the run fails on the
// exit status of node --test and, besides, on any sanitizer report in its
// output.
import { cpSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = new URL('../../', import.meta.url);
const here = new URL('build/wasm-asan/', root);
const path = (url) => fileURLToPath(url);

// Whichever of these a change breaks under the sanitizers, in the core or in
// the glue. Left out: tests of other builds, threads, init({ wasm }) and the
// shipped files (every_build, threads, init_wasm, simd_build).
const TESTS = ['api', 'bad_input', 'decoder_fixtures', 'hostile_input', 'lifetime', 'pytorch_fixtures', 'safetensors', 'weight_dtypes']
  .map((name) => `tests/js/${name}.test.js`);

// The module there must be the sanitized one: ASan's runtime is linked in.
const wasm = new URL('dist/mha-core.wasm', here);
if (!existsSync(wasm) || !readFileSync(wasm).includes('AddressSanitizer')) {
  console.error('tests/wasm_asan/run.mjs: no build/wasm-asan/dist/mha-core.wasm under ASan; run scripts/build.sh');
  process.exit(1);
}

rmSync(new URL('tests/', here), { recursive: true, force: true });
cpSync(new URL('tests/js/', root), new URL('tests/js/', here), { recursive: true });
cpSync(new URL('tests/fixtures/', root), new URL('tests/fixtures/', here), { recursive: true });
cpSync(new URL('common/', root), new URL('common/', here), { recursive: true });  // the tests' PRNG
cpSync(new URL('package.json', root), new URL('package.json', here));

const preload = new URL('single_build.mjs', import.meta.url).href;
const child = spawn(process.execPath, ['--test', '--test-concurrency=2', '--test-reporter=spec', ...TESTS], {
  cwd: path(here),
  env: { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${preload}`.trim() },
  stdio: ['ignore', 'pipe', 'pipe'],
});

// ASan's and UBSan's reports (Emscripten's runtime, as it prints them).
const REPORT = /AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|: runtime error: /;
const reports = [];
for (const [from, to] of [[child.stdout, process.stdout], [child.stderr, process.stderr]]) {
  let rest = '';
  from.setEncoding('utf8');
  from.on('data', (text) => {
    to.write(text);
    const lines = (rest + text).split('\n');
    rest = lines.pop();
    for (const line of lines) if (REPORT.test(line)) reports.push(line.trim());
  });
  from.on('end', () => { if (REPORT.test(rest)) reports.push(rest.trim()); });
}

const code = await new Promise((resolve) => child.on('close', (c, signal) => resolve(c ?? `signal ${signal}`)));
if (reports.length > 0) {
  console.error(`\ntests/wasm_asan/run.mjs: ${reports.length} sanitizer report line(s) in the output:`);
  for (const line of reports.slice(0, 20)) console.error(`  ${line}`);
  process.exit(1);
}
if (code !== 0) {
  console.error(`\ntests/wasm_asan/run.mjs: node --test exited with ${code}`);
  process.exit(1);
}
