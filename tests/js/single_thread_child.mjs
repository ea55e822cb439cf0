// Run by threads.test.js: loads the package with threads: 1 (a fresh process,
// since the build is chosen once) and reports the build and a result digest.
import { MultiheadAttention, capabilities, init } from '../../dist/index.js';
import { digestOfStandardRun } from './standard_run.js';

await init({ threads: 1 });
const digest = await digestOfStandardRun(MultiheadAttention);
const { build, threads, reason } = capabilities();
process.stdout.write(JSON.stringify({ build, threads, reason, digest }));
