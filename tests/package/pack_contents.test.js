// `npm publish` uploads exactly what a user needs: the built dist files,
// package.json, the README (and a LICENSE / CHANGELOG when the repository has
// them), and nothing of the sources, tests, demo, benchmarks or build scratch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';

import { repoRoot, assertBuilt, packedFileList, DIST_FILES } from './consumer.js';

const REQUIRED = ['package.json', 'README.md', ...DIST_FILES];
// Allowed beside them. npm packs a LICENSE whenever one exists (so it is
// required then); a CHANGELOG only when package.json's files names it.
const LICENSES = ['LICENSE', 'LICENSE.md', 'LICENSE.txt'];
const OPTIONAL = [...LICENSES, 'CHANGELOG.md'];

let files;
async function list() {
  assertBuilt();
  files ??= await packedFileList();
  return files;
}

test('npm pack lists every file a user needs', { timeout: 60_000 }, async () => {
  const packed = await list();
  const missing = REQUIRED.filter((f) => !packed.includes(f));
  assert.deepEqual(missing, [], `missing from the tarball: ${missing.join(', ')}`);
  for (const f of LICENSES) {
    if (existsSync(join(repoRoot, f))) assert.ok(packed.includes(f), `${f} exists in the repository but is not packed`);
  }
});

// Every packed file under dist/ must be loaded by something a user loads:
// reachable from package.json's entry points through the module graph
// (imports, import(), require, `new URL('x', import.meta.url)`, worker
// scripts named in the Emscripten glue). A file nothing refers to is build
// scratch that slipped into `files`. New modules of the package pass as long
// as the entry reaches them, so the test follows the package as it grows.
function reachableFromEntries(packed) {
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'));
  const entries = [pkg.main, pkg.types];
  const walk = (v) => {
    if (typeof v === 'string') entries.push(v);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(pkg.exports);
  const seen = new Set();
  const queue = entries.filter(Boolean).map((e) => posix.normalize(e));
  while (queue.length) {
    const file = queue.pop();
    if (seen.has(file) || !packed.includes(file)) continue;
    seen.add(file);
    const dir = posix.dirname(file);
    // A package.json next to a module decides how Node reads it (type: commonjs).
    if (packed.includes(posix.join(dir, 'package.json'))) seen.add(posix.join(dir, 'package.json'));
    if (!/\.(c|m)?js$|\.d\.ts$/.test(file)) continue;
    const text = readFileSync(join(repoRoot, file), 'utf8');
    for (const [, ref] of text.matchAll(/["'`]((?:\.{1,2}\/)?[\w./-]+\.(?:js|mjs|cjs|wasm|json))["'`]/g)) {
      const target = posix.join(dir, ref);
      queue.push(target);
      if (target.endsWith('.js')) queue.push(target.replace(/\.js$/, '.d.ts'));  // its types
    }
  }
  return seen;
}

test('npm pack lists nothing a user does not need (no tests, src, web, bench, build scratch)', { timeout: 60_000 }, async () => {
  const packed = await list();
  const leaks = packed.filter((f) => /^(tests|src|web|bench|build|scripts|bindings|docs|\.deps|\.ci|node_modules)\//.test(f)
    || /\.(map|o|a|tgz|log|cpp|hpp|h|py)$/.test(f));
  assert.deepEqual(leaks, [], `sources, tests or scratch in the tarball: ${leaks.join(', ')}`);
  const outside = packed.filter((f) => !f.startsWith('dist/') && !['package.json', 'README.md', ...OPTIONAL].includes(f));
  assert.deepEqual(outside, [], `files outside dist/ other than package.json, README, LICENSE, CHANGELOG: ${outside.join(', ')}`);
  const reachable = reachableFromEntries(packed);
  const unused = packed.filter((f) => f.startsWith('dist/') && !reachable.has(f));
  assert.deepEqual(unused, [], `dist files nothing loads (not reachable from package.json's main/types/exports): ${unused.join(', ')}`);
});

test('every file package.json points to (main, types, exports) is in the tarball', { timeout: 60_000 }, async () => {
  const packed = await list();
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'));
  const targets = [pkg.main, pkg.types];
  const walk = (v) => {
    if (typeof v === 'string') targets.push(v);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(pkg.exports);
  const absent = targets.filter(Boolean).map((t) => t.replace(/^\.\//, '')).filter((t) => !packed.includes(t));
  assert.deepEqual(absent, [], `package.json points to files the tarball lacks: ${absent.join(', ')}`);
});
