// The ONNX graphs of the onnxruntime-web peers: written by bench/make_onnx.py
// (Debian's python3-onnx) into the git-ignored build/bench/onnx, and rewritten
// only when one is missing or the generator changed since.
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { VARIANTS, graphFile } from './peers/ort.js';

const PYTHON = '/usr/bin/python3';  // Debian's, where python3-onnx lives
const KINDS = ['self', 'causal', 'cross'];

export function ensureGraphs(root, dir, shapes) {
  const generator = path.join(root, 'bench', 'make_onnx.py');
  // The teaching shape's E, H (16x8) also serves onnxruntime's start-up session.
  const pairs = [...new Set(['16x8', ...shapes.map((s) => `${s.E}x${s.H}`)])];
  const files = pairs.flatMap((p) => {
    const [E, H] = p.split('x').map(Number);
    return VARIANTS.flatMap((v) => KINDS.filter((k) => !(v.id === 'attention' && k === 'cross'))
      .map((k) => graphFile(dir, v.id, k, E, H)));
  });
  const genTime = fs.statSync(generator).mtimeMs;
  const stale = files.filter((f) => !fs.existsSync(f) || fs.statSync(f).mtimeMs < genTime);
  if (stale.length === 0) return;
  console.log(`[bench] writing ONNX graphs (${stale.length} missing or older than make_onnx.py)`);
  const r = spawnSync(PYTHON, [generator, dir, ...pairs], { stdio: 'inherit' });
  if (r.status !== 0)
    throw new Error(`${PYTHON} bench/make_onnx.py failed (is python3-onnx installed? scripts/setup.sh --bench installs it)`);
}
