// Shared setup of the package-consumer suite: the package as a user gets it.
// Each test file packs the repository with `npm pack` (what `npm publish`
// would upload), installs the tarball into a fresh temporary project, and
// drives that project from outside the repository, so nothing here can
// accidentally resolve 'mha-wasm' to the working tree. Also: child processes
// with time limits, a static server with or without cross-origin isolation,
// Debian's Chromium, and the forward pass every consumer runs (`probe`).
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync,
} from 'node:fs';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import assert from 'node:assert/strict';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
// The repository's own tools (never installed into the consumer projects).
export const tscBin = realpathSync(join(repoRoot, 'node_modules/.bin/tsc'));
export const viteBin = realpathSync(join(repoRoot, 'node_modules/.bin/vite'));

// What `npm run build` must have produced before the package can be packed:
// the dist/ files package.json's "files" names.
export const DIST_FILES = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).files
  .filter((f) => f.startsWith('dist/'));

/**
 * Runs a command; resolves (never rejects) to { code, signal, stdout, stderr,
 * timedOut }. The time limit kills a hung child instead of hanging the suite.
 */
export function run(file, args, { cwd, env = process.env, timeout = 60_000 } = {}) {
  return new Promise((done) => {
    execFile(file, args, { cwd, env, timeout, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        done({
          code: err ? (typeof err.code === 'number' ? err.code : null) : 0,
          signal: err?.signal ?? null,
          timedOut: Boolean(err?.killed && err?.signal === 'SIGKILL'),
          stdout: String(stdout),
          stderr: String(stderr),
        });
      });
  });
}

/** What a failed child process did and said, for assertion messages. */
export function describeRun(what, r) {
  const how = r.timedOut ? 'timed out' : r.signal ? `was killed by ${r.signal}` : `exited with code ${r.code}`;
  return `${what} ${how}\n--- stdout\n${r.stdout.slice(-4000)}\n--- stderr\n${r.stderr.slice(-4000)}`;
}

// npm under `npm test` inherits npm_* variables (npm_config_local_prefix and
// friends) that describe the repository; the consumer's npm must not see them.
function npmEnv() {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
  return { ...env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };
}

export function npm(args, { cwd, timeout = 60_000 } = {}) {
  return run('npm', args, { cwd, env: npmEnv(), timeout });
}

/** Fails with a clear message when dist/ is missing something (not built yet, or mid-rebuild). */
export function assertBuilt() {
  const missing = DIST_FILES.filter((f) => !existsSync(join(repoRoot, f)));
  assert.deepEqual(missing, [], `dist/ is incomplete (run scripts/build.sh): missing ${missing.join(', ')}`);
}

/** `npm pack --dry-run --json`: the paths `npm publish` would upload. */
export async function packedFileList() {
  const r = await npm(['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: repoRoot });
  assert.equal(r.code, 0, describeRun('npm pack --dry-run', r));
  const [info] = JSON.parse(r.stdout);
  return info.files.map((f) => f.path).sort();
}

export function tempDir(label) {
  return mkdtempSync(join(tmpdir(), `mha-wasm-${label}-`));
}

/**
 * `npm pack` of the repository as it is now, made once and shared by every
 * test file of this run: the tarball lives in a temp folder named by a hash
 * of what it packs, so a rebuilt dist/ gets a fresh one. (npm itself takes
 * a second or two to start; the suite runs files two at a time on 2 cores.)
 */
async function packedTarball() {
  const hash = createHash('sha256');
  for (const f of ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md', ...DIST_FILES])
    if (existsSync(join(repoRoot, f))) hash.update(f).update(readFileSync(join(repoRoot, f)));
  const dir = join(tmpdir(), `mha-wasm-tarball-${hash.digest('hex').slice(0, 16)}`);
  const find = () => (existsSync(dir) ? readdirSync(dir).find((f) => f.endsWith('.tgz')) : undefined);
  if (!find()) {
    // Tarballs of earlier builds are stale now.
    for (const old of readdirSync(tmpdir()).filter((f) => f.startsWith('mha-wasm-tarball-')))
      rmSync(join(tmpdir(), old), { recursive: true, force: true });
    const scratch = tempDir('pack');
    const pack = await npm(['pack', '--pack-destination', scratch, '--json', '--ignore-scripts'], { cwd: repoRoot });
    assert.equal(pack.code, 0, describeRun('npm pack', pack));
    try {
      renameSync(scratch, dir);  // atomic: a parallel file that packed first keeps its copy
    } catch {
      rmSync(scratch, { recursive: true, force: true });
    }
  }
  return join(dir, find());
}

/**
 * Packs the repository and installs the tarball into a new temporary project
 * `{ "type": "module" }`. Returns { dir, tarball, packageDir, cleanup }.
 * One per test file: packing and installing take a second or two, and a
 * private project per file lets the files run in parallel and clean up alone.
 */
export async function makeConsumer(label = 'consumer') {
  assertBuilt();
  const root = tempDir(label);
  try {
    const tarball = await packedTarball();

    const dir = join(root, 'app');
    mkdirSync(dir);
    writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ name: 'mha-wasm-consumer', version: '1.0.0', private: true, type: 'module' }, null, 2)}\n`);
    // The package has no dependencies: installing it needs no registry.
    const install = await npm(['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', tarball], { cwd: dir });
    assert.equal(install.code, 0, describeRun('npm install <tarball>', install));
    const packageDir = join(dir, 'node_modules', 'mha-wasm');
    assert.ok(existsSync(join(packageDir, 'package.json')), 'the tarball did not install into node_modules/mha-wasm');
    return { dir, tarball, packageDir, cleanup: () => rmSync(root, { recursive: true, force: true }) };
  } catch (err) {
    rmSync(root, { recursive: true, force: true });
    throw err;
  }
}

/** Runs a script file with this Node, from the consumer project. */
export function runNode(consumer, file, { timeout = 30_000, args = [], node = process.execPath } = {}) {
  return run(node, [...args, file], { cwd: consumer.dir, timeout });
}

/** The path of Node `major` (scripts/node.sh: the machine's own, or the cached npm build). */
export function nodeOfMajor(major) {
  return execFileSync(join(repoRoot, 'scripts/node.sh'), ['--path', String(major)], { encoding: 'utf8' }).trim();
}

// ---------------------------------------------------------------------------
// The forward pass every consumer (Node ESM, CommonJS, Vite page, plain page)
// runs. Self-contained, so its source text can be pasted into a script or a
// page (`${probe}`): it must not refer to anything outside its own body.
// Results travel as base64 of the Float32Array bytes, so "equal" means equal
// bit for bit (-0, NaN payloads and all), not merely equal after JSON.

export async function probe(api, { threads, simd } = {}) {
  const { init, capabilities, MultiheadAttention, Tensor } = api;
  if (threads !== undefined || simd !== undefined) await init({ threads, simd });
  const base64 = (f32) => {
    const bytes = new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength);
    let s = '';
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(s);
  };
  // Exact rational inputs in [-1, 1): the same float32 bits in every engine.
  const input = (n, salt) => Float32Array.from({ length: n }, (_, i) => ((i * 37 + salt * 11) % 101) / 50 - 1);
  // The README's teaching shape, then one large enough for the threads to share work.
  const cases = [{ B: 3, L: 4, E: 16, H: 8, seed: 7 }, { B: 4, L: 48, E: 64, H: 8, seed: 11 }];
  const results = [];
  for (const c of cases) {
    const mha = await MultiheadAttention.create({ embedDim: c.E, numHeads: c.H, seed: c.seed });
    const x = new Tensor(input(c.B * c.L * c.E, c.seed), [c.B, c.L, c.E]);
    const r = mha.forward(x, null, null, { needWeights: 'per-head', returnHeads: true, returnConcat: true });
    const t = (tensor) => ({ dims: tensor.dims, data: base64(tensor.data) });
    results.push({ case: c, output: t(r.output), weights: t(r.weights), heads: t(r.heads), concat: t(r.concat) });
    mha.dispose();
  }
  return { capabilities: capabilities(), results };
}

/**
 * The probe of the repository's own dist/index.js: the reference. It runs in
 * a child process with a time limit, never in the test process: a module
 * that fails to load (dist/ half rebuilt) can leave pthread workers that
 * would keep the test process alive forever.
 */
const references = new Map();
export function referenceProbe(options = {}) {
  const key = JSON.stringify(options);
  if (!references.has(key)) references.set(key, (async () => {
    const entry = pathToFileURL(join(repoRoot, 'dist', 'index.js')).href;
    const source = `const probe = ${probe};\nconsole.log(JSON.stringify(await probe(await import(${JSON.stringify(entry)}), ${JSON.stringify(options)})));`;
    // A file, not --input-type=module -e: Node's pthread workers inherit
    // the parent's flags, and --input-type refuses their file entry.
    const dir = mkdtempSync(join(tmpdir(), 'mha-reference-'));
    const file = join(dir, 'reference.mjs');
    writeFileSync(file, source);
    const r = await run(process.execPath, [file], { cwd: repoRoot, timeout: 60_000 });
    rmSync(dir, { recursive: true, force: true });
    assert.equal(r.code, 0, describeRun('the reference forward pass (dist/index.js in Node)', r));
    return JSON.parse(r.stdout.trim().split('\n').at(-1));
  })());
  return references.get(key);
}

const fromBase64 = (s) => {
  const b = Buffer.from(s, 'base64');
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
};

/** Asserts two probe results hold the same dims and the same float32 bits; names the first difference. */
export function assertSameResults(got, want, where) {
  assert.equal(got.length, want.length, `${where}: number of cases`);
  for (let k = 0; k < want.length; k++) {
    const label = `${where}, case ${JSON.stringify(want[k].case)}`;
    for (const name of ['output', 'weights', 'heads', 'concat']) {
      assert.deepEqual(got[k][name].dims, want[k][name].dims, `${label}: ${name}.dims`);
      if (got[k][name].data === want[k][name].data) continue;
      const g = fromBase64(got[k][name].data), w = fromBase64(want[k][name].data);
      const u = new Uint32Array(g.buffer, g.byteOffset, g.length), v = new Uint32Array(w.buffer, w.byteOffset, w.length);
      const i = u.findIndex((bits, j) => bits !== v[j]);
      assert.fail(`${label}: ${name} differs from the reference (lengths ${g.length}/${w.length}; first at [${i}]: ${g[i]} vs ${w[i]})`);
    }
  }
}

// ---------------------------------------------------------------------------
// A static file server on 127.0.0.1 (port 0), optionally cross-origin
// isolated. It records every request, so a test can say what was (not) found;
// `refuse(path)` answers 404 for paths a test wants missing.

const MIME = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript',
  '.cjs': 'text/javascript', '.json': 'application/json', '.wasm': 'application/wasm', '.css': 'text/css',
};

export async function serveStatic(root, { isolated, refuse = () => false }) {
  const requests = [];
  const server = http.createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://localhost').pathname);
    const file = resolve(root, `.${path.endsWith('/') ? `${path}index.html` : path}`);
    const headers = { 'cache-control': 'no-store' };
    if (isolated) {
      headers['cross-origin-opener-policy'] = 'same-origin';
      headers['cross-origin-embedder-policy'] = 'require-corp';
    }
    let status = 200;
    let body;
    if (file !== root && !file.startsWith(root + sep)) status = 403;
    else if (refuse(path)) status = 404;  // a file the test makes unavailable
    else {
      try { body = await readFile(file); } catch { status = 404; }
    }
    requests.push({ path, status });
    if (status !== 200) {
      res.writeHead(status, headers);
      res.end();
      return;
    }
    res.writeHead(200, { ...headers, 'content-type': MIME[extname(file)] ?? 'application/octet-stream' });
    res.end(body);
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    origin: `http://127.0.0.1:${server.address().port}`,
    requests,
    close: () => new Promise((ok) => { server.closeAllConnections?.(); server.close(ok); }),
  };
}

// ---------------------------------------------------------------------------
// Debian's Chromium through playwright-core (never a downloaded browser).

export async function openChromium() {
  const { chromium } = await import('playwright-core');
  // The flags keep a headless root Chromium from reaching out to the (closed) network.
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    timeout: 30_000,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/**
 * Opens `url` in a fresh context, waits for the page's `window.probe`, runs
 * it with `options`, and returns { value, error, log } where `log` holds the
 * console, page errors and workers seen: enough to say why a run failed.
 */
export async function probePage(browser, url, options, { timeout = 30_000 } = {}) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(timeout);
  const log = { console: [], pageErrors: [], workers: [], failedRequests: [] };
  page.on('console', (m) => log.console.push(`${m.type()}: ${m.text()}`));
  // A worker script that fails to load surfaces as an error without a message.
  page.on('pageerror', (e) => log.pageErrors.push(e.stack || e.message || '(an error event without a message, e.g. from a worker that failed to load)'));
  page.on('requestfailed', (r) => log.failedRequests.push(`${r.url()}: ${r.failure()?.errorText}`));
  page.on('worker', (w) => {
    log.workers.push(w.url());
    w.on('console', (m) => log.console.push(`worker ${m.type()}: ${m.text()}`));
  });
  let value, error;
  try {
    await page.goto(url);
    // A module that fails to load leaves no window.probe: the log says why.
    await page.waitForFunction(() => typeof window.probe === 'function', null, { timeout })
      .catch(() => { throw new Error(`the page's module script did not define window.probe within ${timeout / 1000} s`); });
    let timer;
    value = await Promise.race([
      page.evaluate((o) => window.probe(o), options),
      new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`the forward pass did not finish within ${timeout / 1000} s`)), timeout); }),
    ]).finally(() => clearTimeout(timer));
  } catch (err) {
    error = err;
  } finally {
    await context.close().catch(() => {});
  }
  return { value, error, log };
}

/** A page run's diagnostics, for assertion messages. */
export function describeLog(log, requests = []) {
  const bad = requests.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.path}`);
  return [
    `workers: ${log.workers.length ? log.workers.join(', ') : 'none'}`,
    `console: ${log.console.length ? `\n  ${log.console.join('\n  ')}` : 'nothing'}`,
    `page errors: ${log.pageErrors.length ? `\n  ${log.pageErrors.join('\n  ')}` : 'none'}`,
    `failed requests: ${[...log.failedRequests, ...bad].join(', ') || 'none'}`,
  ].join('\n');
}

/** Source of a page module that exposes `window.probe` using the package at `specifier`. */
export function pageModuleSource(specifier) {
  return `// Generated by tests/package: runs the suite's probe with the package.
import * as api from '${specifier}';
const probe = ${probe};
window.probe = (options) => probe(api, options);
`;
}
