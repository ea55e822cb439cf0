// The native column: the same C++ core built natively (build/native-bench,
// Release) and timed by Google Benchmark (bench/native/bench_mha.cpp) on the
// same shapes at 1 and 2 threads. Configured once, rebuilt incrementally.
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';

const BUILD_DIR = path.join('build', 'native-bench');

function sh(cmd, args, root) {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed:\n${(r.stderr || r.stdout).slice(-2000)}`);
  return r.stdout;
}

/**
 * Builds and runs the native benchmark on `shapeIds` at `threadCounts`. Returns
 * { ok: true, results: { [threads]: { [id]: { medianMs, gflops, threadsUsed } } }, context }
 * or { ok: false, reason }.
 */
export function runNative(root, shapeIds, threadCounts, { minTime, repetitions }) {
  try {
    if (!fs.existsSync(path.join(root, BUILD_DIR, 'CMakeCache.txt'))) {
      console.log('[bench] configuring the native benchmark in build/native-bench');
      sh('cmake', ['-S', '.', '-B', BUILD_DIR, '-DCMAKE_BUILD_TYPE=Release', '-DMHA_BUILD_TESTS=OFF', '-DMHA_BUILD_BENCHMARKS=ON'], root);
    }
    console.log('[bench] building the native benchmark');
    sh('cmake', ['--build', BUILD_DIR, '-j2'], root);
    const exe = path.join(BUILD_DIR, 'bench', 'native', 'mha_bench');
    console.log(`[bench] running the native benchmark (${shapeIds.join(', ')})`);
    // Registered names are <shape>/<threads>/real_time.
    const out = sh(exe, [
      `--benchmark_filter=^(${shapeIds.join('|')})/(${threadCounts.join('|')})/`,
      `--benchmark_min_time=${minTime}`,
      `--benchmark_repetitions=${repetitions}`,
      '--benchmark_report_aggregates_only=true',
      '--benchmark_format=json',
    ], root);
    const json = JSON.parse(out);
    const results = {};
    for (const b of json.benchmarks) {
      if (b.aggregate_name !== 'median') continue;
      const [id, threads] = b.run_name.split('/');
      const toMs = { ns: 1e-6, us: 1e-3, ms: 1, s: 1e3 }[b.time_unit];
      // A core without a thread pool runs 1 thread whatever was asked: not a 2-thread number.
      if (Math.round(b.threads) !== Number(threads)) continue;
      (results[threads] ??= {})[id] = { medianMs: b.real_time * toMs, gflops: b.GFLOPS, repetitions };
    }
    const c = json.context;
    return { ok: true, results, context: { mhz: c.mhz_per_cpu, cpus: c.num_cpus, libraryBuildType: c.library_build_type } };
  } catch (e) {
    return { ok: false, reason: e.message.split('\n')[0] };
  }
}
