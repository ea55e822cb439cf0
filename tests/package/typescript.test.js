// A TypeScript user of the installed tarball gets working types: a strict
// program using the whole documented API type-checks (the repository's tsc,
// --strict --noEmit, skipLibCheck off so the shipped index.d.ts itself is
// checked), and misuse of the API is rejected, so the check can fail.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { makeConsumer, run, repoRoot, tscBin } from './consumer.js';

let consumer;
before(async () => { consumer = await makeConsumer('typescript'); writeSources(); });
after(() => consumer?.cleanup());

// Uses every part of the public API a program touches, with its types named.
const GOOD = `import {
  MultiheadAttention, Tensor, init, capabilities, setThreads, memoryStats, version,
  type Capabilities, type ForwardOptions, type ForwardResult, type StateDict, type TensorLike,
} from 'mha-wasm';

await init({ threads: 'auto' });
const mha: MultiheadAttention = await MultiheadAttention.create({ embedDim: 16, numHeads: 8, seed: 0 });
const headDim: number = mha.headDim;

// loadStateDict with PyTorch's names, built from parameterShapes().
const shapes: Record<string, number[]> = mha.parameterShapes();
const dict: StateDict = {};
for (const [name, shape] of Object.entries(shapes)) {
  dict[name] = new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.01);
}
mha.loadStateDict(dict, { strict: true });
const weights: Record<string, Tensor> = mha.stateDict();

// forward with options; results are Tensors with dims.
const x = new Tensor(new Float32Array(3 * 4 * 16), [3, 4, 16]);
const padding: TensorLike<Uint8Array> = { data: new Uint8Array(3 * 4), dims: [3, 4] };
const options: ForwardOptions = {
  keyPaddingMask: padding, isCausal: true, validLens: [4, 3, 2],
  needWeights: 'per-head', returnHeads: true, returnConcat: true, fullyMaskedRows: 'nan',
};
const result: ForwardResult = mha.forward(x, null, null, options);
const outputDims: number[] = result.output.dims;
const weightDims: number[] | undefined = result.weights?.dims;
const heads: Float32Array | undefined = result.heads?.data;

const caps: Capabilities = capabilities();
const build: 'simd' | 'simd-threads' | 'relaxed' | 'relaxed-threads' | null = caps.build;
const reason: string | null = caps.reason;
const inUse: number = await setThreads(1);
const live: number = (await memoryStats()).liveLayers;

mha.dispose();
const gone: boolean = mha.disposed;

// Symbol.dispose: a \`using\` declaration frees the layer at the end of the block.
{
  using scoped = await MultiheadAttention.create({ embedDim: 4, numHeads: 2, addBiasKV: true });
  scoped.forward({ data: new Float32Array(8), dims: [2, 4] });
}
const explicit = await MultiheadAttention.create({ embedDim: 4, numHeads: 1 });
explicit[Symbol.dispose]();

export { headDim, weights, outputDims, weightDims, heads, build, reason, inUse, live, gone, version };
`;

// Each line marked [code, why] must be reported by tsc, and no other line.
// Any error code on the line counts (codes vary between TypeScript versions).
const BAD = [
  "import { MultiheadAttention, Tensor } from 'mha-wasm';",
  "const mha = await MultiheadAttention.create({ embedDim: 16, numHeads: 8 });",
  "const x = new Tensor(new Float32Array(16), [1, 16]);",
  ["await MultiheadAttention.create({ embedDim: 16 });", 'numHeads is required'],
  ["mha.forward(x, null, null, { needWeights: 'perhead' });", "needWeights is 'none' | 'average' | 'per-head'"],
  ["const dims: string = mha.forward(x).output.dims;", 'dims are number[]'],
  ["new MultiheadAttention();", 'the constructor is private: use create()'],
  ["mha.forward(x).weights.dims;", 'weights is optional'],
  ["mha.loadStateDict({ in_proj_weight: [1, 2, 3] });", 'parameters are Float32Arrays, not number[]'],
  'export {};',
];

// A project on target es2022's default libs, without esnext.disposable: the
// .d.ts declares Symbol.dispose itself, so its dispose member still checks.
const ES2022 = `import { MultiheadAttention } from 'mha-wasm';
const mha = await MultiheadAttention.create({ embedDim: 4, numHeads: 2, numKVHeads: 1, rope: true });
const cache = mha.createCache({ capacity: 8 });
mha.forward({ data: new Float32Array(8), dims: [2, 4] }, null, null, { cache }).output.dims satisfies number[];
cache[Symbol.dispose]();
mha[Symbol.dispose]();
export {};
`;

function writeSources() {
  writeFileSync(join(consumer.dir, 'typed-es2022.ts'), ES2022);
  writeFileSync(join(consumer.dir, 'typed-consumer.ts'), GOOD);
  writeFileSync(join(consumer.dir, 'typed-misuse.ts'), BAD.map((l) => (Array.isArray(l) ? l[0] : l)).join('\n') + '\n');
}

function tsconfig(name, compilerOptions, files) {
  const path = join(consumer.dir, `tsconfig.${name}.json`);
  writeFileSync(path, JSON.stringify({
    compilerOptions: { strict: true, noEmit: true, skipLibCheck: false, target: 'es2022', types: [], ...compilerOptions },
    files,
  }, null, 2));
  return path;
}

// --listFiles also proves which index.d.ts was used: the tarball's.
async function tsc(project) {
  return run(process.execPath, [tscBin, '-p', project, '--listFiles', '--pretty', 'false'], { cwd: consumer.dir, timeout: 60_000 });
}

// tsc's diagnostics without the --listFiles listing.
function diagnostics(what, r) {
  const errors = r.stdout.split('\n').filter((l) => / error TS\d+/.test(l));
  return `${what} exited with code ${r.code}${r.timedOut ? ' (timed out)' : ''}:\n${errors.join('\n')}\n${r.stderr}`;
}

function assertUsedInstalledTypes(r) {
  const listed = r.stdout.split('\n').map((l) => l.trim());
  assert.ok(listed.some((l) => l.endsWith('/node_modules/mha-wasm/dist/index.d.ts')),
    `tsc did not read the installed package's index.d.ts:\n${r.stdout}`);
  // tsc's own lib files live in the repository's node_modules; the package's must not come from the tree.
  const fromTree = listed.filter((l) => l.startsWith(repoRoot) && !l.startsWith(join(repoRoot, 'node_modules')));
  assert.deepEqual(fromTree, [], 'tsc read type files from the working tree instead of the tarball');
}

test('a strict TypeScript browser app (module esnext, moduleResolution bundler, DOM lib) type-checks against the shipped index.d.ts', { timeout: 60_000 }, async () => {
  const project = tsconfig('bundler', { module: 'esnext', moduleResolution: 'bundler', lib: ['es2022', 'esnext.disposable', 'dom'] }, ['typed-consumer.ts']);
  const r = await tsc(project);
  assert.equal(r.code, 0, diagnostics('tsc (bundler)', r));
  assertUsedInstalledTypes(r);
});

test('a strict TypeScript Node app (module and moduleResolution nodenext, @types/node, no DOM lib) type-checks against the shipped index.d.ts', { timeout: 60_000 }, async (t) => {
  // A Node project has @types/node; the repository has a copy (used only as
  // the consumer's own dependency, never to resolve 'mha-wasm').
  const typesNode = join(repoRoot, 'node_modules', '@types', 'node');
  if (!existsSync(typesNode)) return t.skip('no @types/node in the repository\'s node_modules to give the consumer');
  mkdirSync(join(consumer.dir, 'node_modules', '@types'), { recursive: true });
  if (!existsSync(join(consumer.dir, 'node_modules', '@types', 'node'))) symlinkSync(typesNode, join(consumer.dir, 'node_modules', '@types', 'node'), 'dir');
  const project = tsconfig('nodenext', { module: 'nodenext', moduleResolution: 'nodenext', lib: ['es2022', 'esnext.disposable'], types: ['node'] }, ['typed-consumer.ts']);
  const r = await tsc(project);
  assert.equal(r.code, 0, diagnostics('tsc (nodenext)', r));
  assertUsedInstalledTypes(r);
});

test('tsc rejects misuse of the API (missing numHeads, unknown needWeights, dims as a string, new, unchecked optional weights, number[] parameters)', { timeout: 60_000 }, async () => {
  const project = tsconfig('misuse', { module: 'nodenext', moduleResolution: 'nodenext', lib: ['es2022', 'esnext.disposable', 'dom'] }, ['typed-misuse.ts']);
  const r = await tsc(project);
  assert.notEqual(r.code, 0, `tsc accepted the misuse file:\n${r.stdout}`);
  const reported = r.stdout.split('\n').filter((l) => l.startsWith('typed-misuse.ts('));
  BAD.forEach((line, i) => {
    if (!Array.isArray(line)) return;
    const [code, why] = line;
    assert.ok(reported.some((l) => l.startsWith(`typed-misuse.ts(${i + 1},`) && / error TS\d+/.test(l)),
      `tsc accepted line ${i + 1} (${code}), which is wrong because ${why}; it reported:\n${reported.join('\n')}`);
  });
  // And nothing else: every error is one the file meant to make.
  const expectedLines = BAD.map((l, i) => (Array.isArray(l) ? i + 1 : null)).filter(Boolean);
  const stray = reported.filter((l) => !expectedLines.includes(Number(/\((\d+),/.exec(l)[1])));
  assert.deepEqual(stray, [], 'tsc reported errors on lines that are correct');
  const outside = r.stdout.split('\n').filter((l) => / error TS\d+/.test(l) && !l.startsWith('typed-misuse.ts('));
  assert.deepEqual(outside, [], 'errors outside the misuse file (in the shipped .d.ts?)');
});

test('the shipped index.d.ts type-checks in a project with neither the DOM lib nor @types/node', {
  timeout: 60_000,
}, async () => {
  const project = tsconfig('bare', { module: 'nodenext', moduleResolution: 'nodenext', lib: ['es2022', 'esnext.disposable'] }, ['typed-consumer.ts']);
  const r = await tsc(project);
  assert.equal(r.code, 0, diagnostics('tsc (no DOM, no @types/node)', r));
});

// The current major and TypeScript 5.x (the repository's typescript5 alias).
const TSC5 = join(repoRoot, 'node_modules', 'typescript5', 'bin', 'tsc');
for (const [version, bin] of [['current', tscBin], ['5.x', TSC5]]) {
  test(`the shipped index.d.ts type-checks with target es2022's default libs (no esnext.disposable), TypeScript ${version}`, {
    timeout: 60_000,
  }, async () => {
    const project = tsconfig(`es2022-${version}`, { module: 'nodenext', moduleResolution: 'nodenext', lib: ['es2022'] }, ['typed-es2022.ts']);
    const r = await run(process.execPath, [bin, '-p', project, '--pretty', 'false'], { cwd: consumer.dir, timeout: 60_000 });
    assert.equal(r.code, 0, diagnostics(`tsc ${version} (es2022 libs)`, r));
  });
}
