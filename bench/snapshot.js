// A frozen copy of dist/ for the whole run. Other work rebuilds dist/ while the
// bench runs (a rebuild half-way through once made a measuring process load a
// .mjs and a .wasm from two different builds), so run.js copies dist/ into
// build/bench/dist once, checks that the copy loads at 1 and 2 threads, and
// every measuring process loads mha-wasm from there. The copy's hash goes into
// the report, naming the build the numbers belong to.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';

const CHECK = `
const m = await import(process.argv[2]);
const threads = Number(process.argv[3]);
try { await m.init({ threads }); } catch (e) { if (!(e instanceof TypeError)) throw e; await m.init(); }  // a build without threads
const caps = m.capabilities();
if (threads > 1 && caps.threadsAvailable && caps.threads !== threads) throw new Error(caps.reason);
const layer = await m.MultiheadAttention.create({ embedDim: 16, numHeads: 8 });
const out = layer.forward(new m.Tensor(new Float32Array(3 * 4 * 16).fill(0.5), [3, 4, 16])).output;
if (!(out.data.length === 3 * 4 * 16 && out.data.every(Number.isFinite))) throw new Error('bad output');
console.log(JSON.stringify(m.capabilities()));
process.exit(0);
`;

function hashDir(dir) {
  const h = crypto.createHash('sha256');
  const walk = (d) => {
    for (const name of fs.readdirSync(d).sort()) {
      const p = path.join(d, name);
      if (fs.statSync(p).isDirectory()) walk(p);
      else h.update(name).update(fs.readFileSync(p));
    }
  };
  walk(dir);
  return h.digest('hex').slice(0, 12);
}

/** Copies `dist` to `dest` until a copy loads and runs; returns { dir, hash, builtAt }. */
export async function snapshotDist(dist, dest, { attempts = 6, waitMs = 10000 } = {}) {
  let lastError = null;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    fs.rmSync(dest, { recursive: true, force: true });
    fs.cpSync(dist, dest, { recursive: true });
    const indexUrl = pathToFileURL(path.resolve(dest, 'index.js')).href;
    // The check is a file, not `-e` with --input-type=module: worker threads
    // inherit the process's execArgv, and Node 24 refuses --input-type in a
    // worker started from a file (ERR_INPUT_TYPE_NOT_ALLOWED), which failed
    // every 2-thread check.
    const checkFile = path.join(path.dirname(path.resolve(dest)), 'snapshot-check.mjs');
    fs.writeFileSync(checkFile, CHECK);
    const failures = [1, 2].map((threads) => {
      const r = spawnSync(process.execPath, [checkFile, indexUrl, String(threads)], { encoding: 'utf8', timeout: 60000 });
      if (r.status === 0) return null;
      const lines = (r.stderr || r.stdout || `status ${r.status}`).trim().split('\n');
      return `threads ${threads}: ${lines.find((l) => /Error/.test(l)) ?? lines.slice(-1)[0]}`;
    }).filter(Boolean);
    if (failures.length === 0) {
      const wasm = ['mha-core.wasm', 'mha-core-mt.wasm', 'mha-core-relaxed.wasm', 'mha-core-relaxed-mt.wasm'].map((f) => path.join(dist, f)).filter((f) => fs.existsSync(f));
      const builtAt = wasm.length ? new Date(Math.max(...wasm.map((f) => fs.statSync(f).mtimeMs))).toISOString() : null;
      return { dir: dest, hash: hashDir(dest), builtAt };
    }
    lastError = failures.join('; ');
    console.log(`[bench] dist/ copy ${attempt} does not load (${lastError}); dist/ is probably being rebuilt, retrying in ${waitMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, waitMs));
  }
  throw new Error(`could not take a working copy of dist/: ${lastError}`);
}
