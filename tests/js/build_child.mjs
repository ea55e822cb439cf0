// Run by every_build.test.js in a process of its own (a build is chosen once
// per process): loads the package with the given simd mode and thread count,
// runs every PyTorch fixture (nn.MultiheadAttention's, the decoder
// attention's, the reduced-weight cases' and the cached sequences') through it, and reports the build, the worst errors and the
// digest of the standard run at each thread count it can use.
import { MultiheadAttention, KVCache, EncoderMemory, capabilities, init, setThreads } from '../../dist/index.js';
import {
  loadFixtures, assertClose, runFixtureCase, toleranceOf, loadDecoderFixtures, checkDecoderCase, checkDecoderSequence,
  checkF16ScaledRows, checkInt8ScaledRow,
} from './helpers.js';
import { digestOfStandardRun } from './standard_run.js';

const [simd, threads] = [process.argv[2], Number(process.argv[3])];
await init({ simd, threads });
const worst = {};
const failures = [];
for (const c of loadFixtures()) {
  const result = await runFixtureCase({ MultiheadAttention }, c);
  for (const part of Object.keys(c.expected)) {
    try {
      worst[part] = Math.max(worst[part] ?? 0, assertClose(result[part], c.expected[part], { ...toleranceOf(c, part), what: `${c.name} ${part}` }));
    } catch (err) {
      failures.push(err.message);
    }
  }
}
const decoder = loadDecoderFixtures();
for (const c of decoder.sequences) {
  try {
    await checkDecoderSequence({ MultiheadAttention, KVCache, EncoderMemory }, c);
  } catch (err) {
    failures.push(err.message);
  }
}
for (const c of [...decoder.single, ...decoder.dtypes]) {  // dtypes: f16, bf16 and int8 weights
  try {
    for (const [part, e] of Object.entries(await checkDecoderCase({ MultiheadAttention }, c))) worst[part] = Math.max(worst[part] ?? 0, e);
  } catch (err) {
    failures.push(err.message);
  }
}
for (const big of [0.5, 70000]) {
  try {
    await checkF16ScaledRows(MultiheadAttention, big);
  } catch (err) {
    failures.push(err.message);
  }
}
try {
  await checkInt8ScaledRow(MultiheadAttention);
} catch (err) {
  failures.push(err.message);
}
const digests = {};
for (const n of [1, 2, 3]) {
  const inUse = await setThreads(n);
  digests[inUse] = await digestOfStandardRun(MultiheadAttention);
}
const { build, reason } = capabilities();
process.stdout.write(JSON.stringify({ build, reason, worst, failures, digests }));
