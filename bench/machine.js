// What the numbers were measured on, for BENCHMARKS.md: CPU (from
// /proc/cpuinfo), cores, load, Node, and each peer's version as installed.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';

function cpuinfo() {
  try {
    const text = fs.readFileSync('/proc/cpuinfo', 'utf8');
    const field = (name) => (text.match(new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm')) || [])[1]?.trim();
    const flags = (field('flags') || '').split(' ');
    return {
      model: field('model name') ?? os.cpus()[0]?.model ?? 'unknown',
      family: field('cpu family'), modelNumber: field('model'),
      coresPerSocket: Number(field('cpu cores')) || null,
      siblings: Number(field('siblings')) || null,
      hypervisor: flags.includes('hypervisor'),
      simd: ['sse4_2', 'avx', 'avx2', 'fma', 'avx512f'].filter((f) => flags.includes(f)),
    };
  } catch {
    return { model: os.cpus()[0]?.model ?? 'unknown' };
  }
}

const pkgVersion = (root, name) => {
  try { return JSON.parse(fs.readFileSync(path.join(root, 'node_modules', name, 'package.json'), 'utf8')).version; } catch { return null; }
};

const firstLine = (cmd, args) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.status === 0 ? (r.stdout || r.stderr).split('\n')[0].trim() : null;
};

export function describeMachine(root) {
  const mem = os.totalmem();
  return {
    cpu: cpuinfo(),
    logicalCpus: os.cpus().length,
    memoryGiB: Math.round((mem / 2 ** 30) * 10) / 10,
    os: `${os.type()} ${os.release()} (${os.arch()})`,
    node: process.version,
    v8: process.versions.v8,
    versions: {
      'mha-wasm': JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version,
      'onnxruntime-web': pkgVersion(root, 'onnxruntime-web'),
      '@tensorflow/tfjs-core': pkgVersion(root, '@tensorflow/tfjs-core'),
      '@tensorflow/tfjs-backend-wasm': pkgVersion(root, '@tensorflow/tfjs-backend-wasm'),
      // The toolchain the build used: em++ from PATH or the provisioned root (scripts/toolchain.sh says which).
      emscripten: firstLine('bash', [path.join(root, 'scripts', 'toolchain.sh'), 'ensure']),
      'g++': firstLine('g++', ['--version']),
    },
    loadavg: os.loadavg(),
    date: new Date().toISOString(),
  };
}
