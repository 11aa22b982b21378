#!/usr/bin/env node
// Long fuzzing run of test/helpers/fuzz-body.ts (the fast-check properties of test/fuzz.test.ts):
// 20 times the bounded run's runs, with a random seed unless one is given; the seed is printed first
// so that a failure can be replayed.
//
//   node scripts/fuzz.mjs [--runs N] [--seed S] [--only layers,public,native] [--path P] [--trace]
//
//   --runs N    base runs (the bounded run uses 12000; default here 20x that)
//   --seed S    fast-check seed (default: random, printed)
//   --only L    properties to run (comma-separated)
//   --path P    fast-check replay path of a reported failure (with --only naming its property)
//   --trace     print every case to stderr before it runs (to find a case that crashes the process)
//
// It runs `node --import tsx test/helpers/fuzz-body.ts` from the repository root with
// RNNKIT_FUZZ_RUNS / RNNKIT_FUZZ_SEED / … set, and exits with its status.
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BOUNDED_RUNS = 12000;

function usage(message) {
  if (message) console.error(`fuzz: ${message}`);
  console.error('usage: node scripts/fuzz.mjs [--runs N] [--seed S] [--only layers,public,native] [--path P] [--trace]');
  process.exit(2);
}

const args = process.argv.slice(2);
const opts = { runs: 20 * BOUNDED_RUNS, seed: randomInt(0, 2 ** 31), only: '', path: '', trace: false };
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  const value = () => {
    const v = args[++i];
    if (v === undefined) usage(`${a} needs a value`);
    return v;
  };
  const int = (v, what) => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 0) usage(`${what} must be a non-negative integer, got ${v}`);
    return n;
  };
  if (a === '--runs') opts.runs = int(value(), '--runs');
  else if (a === '--seed') opts.seed = int(value(), '--seed');
  else if (a === '--only') opts.only = value();
  else if (a === '--path') opts.path = value();
  else if (a === '--trace') opts.trace = true;
  else if (a === '--help' || a === '-h') usage();
  else usage(`unknown argument ${a}`);
}

console.log(`fuzz: seed ${opts.seed}, runs ${opts.runs}${opts.only ? `, only ${opts.only}` : ''}`);
console.log(`fuzz: replay with: node scripts/fuzz.mjs --seed ${opts.seed} --runs ${opts.runs}${opts.only ? ` --only ${opts.only}` : ''}`);
const env = {
  ...process.env,
  RNNKIT_FUZZ_RUNS: String(opts.runs),
  RNNKIT_FUZZ_SEED: String(opts.seed),
  ...(opts.only ? { RNNKIT_FUZZ_ONLY: opts.only } : {}),
  ...(opts.path ? { RNNKIT_FUZZ_PATH: opts.path } : {}),
  ...(opts.trace ? { RNNKIT_FUZZ_TRACE: '1' } : {}),
};
const started = Date.now();
const child = spawn(process.execPath, ['--import', 'tsx', path.join('test', 'helpers', 'fuzz-body.ts')], { cwd: root, env, stdio: 'inherit' });
child.on('error', (e) => {
  console.error(`fuzz: could not start node: ${e.message}`);
  process.exit(1);
});
child.on('exit', (code, signal) => {
  const took = ((Date.now() - started) / 1000).toFixed(1);
  if (signal) {
    console.error(`fuzz: the fuzzer was killed by ${signal} after ${took} s (seed ${opts.seed}): a crash. Rerun with --trace to see the case it started last.`);
    process.exit(1);
  }
  console.log(`fuzz: ${code === 0 ? 'passed' : `failed (exit ${code})`} in ${took} s, seed ${opts.seed}`);
  process.exit(code ?? 1);
});
