// The ONNX graphs of the onnxruntime-web peers: written by bench/make_onnx.py
// (Debian's python3-onnx) into the git-ignored build/bench/onnx, and rewritten
// only when one is missing or the generator changed since. The model layers'
// graphs (bench/models.js) get their sizes, features and weight layout from a
// spec file written next to them.
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { VARIANTS, graphFile } from './peers/ort.js';
import { modelGraphSpecs, modelGraphFile } from './peers/ort_models.js';

const PYTHON = '/usr/bin/python3';  // Debian's, where python3-onnx lives
const KINDS = ['self', 'causal', 'cross'];

function generate(args) {
  const r = spawnSync(PYTHON, args, { stdio: 'inherit' });
  if (r.status !== 0)
    throw new Error(`${PYTHON} bench/make_onnx.py failed (is python3-onnx installed? scripts/setup.sh --bench installs it)`);
}

export function ensureGraphs(root, dir, shapes) {
  const generator = path.join(root, 'bench', 'make_onnx.py');
  const layer = shapes.filter((s) => !s.model);
  // The teaching shape's E, H (16x8) also serves onnxruntime's start-up session.
  const pairs = [...new Set(['16x8', ...layer.map((s) => `${s.E}x${s.H}`)])];
  const files = pairs.flatMap((p) => {
    const [E, H] = p.split('x').map(Number);
    return VARIANTS.filter((v) => !v.modelsOnly).flatMap((v) => KINDS.filter((k) => !(v.id === 'attention' && k === 'cross'))
      .map((k) => graphFile(dir, v.id, k, E, H)));
  });
  const genTime = Math.max(fs.statSync(generator).mtimeMs, fs.statSync(path.join(root, 'bench', 'models.js')).mtimeMs);
  const isStale = (f) => !fs.existsSync(f) || fs.statSync(f).mtimeMs < genTime;
  const stale = files.filter(isStale);
  if (stale.length) {
    console.log(`[bench] writing ONNX graphs (${stale.length} missing or older than make_onnx.py)`);
    generate([generator, dir, ...pairs]);
  }
  const specs = modelGraphSpecs(shapes.filter((s) => s.model));
  const staleModels = Object.fromEntries(Object.entries(specs).filter(([key, spec]) => spec.graphs.some((g) => isStale(modelGraphFile(dir, g, key)))));
  if (Object.keys(staleModels).length) {
    console.log(`[bench] writing the model layers' ONNX graphs (${Object.keys(staleModels).join(', ')})`);
    fs.mkdirSync(dir, { recursive: true });
    const specFile = path.join(dir, 'models.json');
    fs.writeFileSync(specFile, JSON.stringify(staleModels, null, 1));
    generate([generator, dir, '--models', specFile]);
  }
}
