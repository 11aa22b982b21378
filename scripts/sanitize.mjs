// Sanitizer builds of the addon and test runs on them.
//
//   node scripts/sanitize.mjs build asan|tsan             build into build-asan/ or build-tsan/
//   node scripts/sanitize.mjs test  asan|tsan [files…]    build when stale, then run node's test
//                                                         runner on the files (default: the suite
//                                                         of that sanitizer, below)
//
// asan = AddressSanitizer + UndefinedBehaviorSanitizer (any UB report aborts the process),
// tsan = ThreadSanitizer. Node is not instrumented, so the sanitizer runtime is preloaded into it
// (LD_PRELOAD, inherited by the test runner's child processes too) and lib/native.ts loads the
// sanitizer build named by RNNKIT_ADDON. Any report makes the process exit non-zero, so the test
// that triggered it fails. Memory leaks are not checked here (Node itself keeps memory until exit;
// the soak test measures rnnkit's growth instead).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const log = (msg) => console.error(`[sanitize] ${msg}`);

const KINDS = {
  asan: {
    cmake: 'address',
    dir: 'build-asan',
    runtimes: ['libasan.so', 'libubsan.so'],
    env: {
      ASAN_OPTIONS: 'detect_leaks=0:halt_on_error=1:abort_on_error=0:exitcode=66:detect_stack_use_after_return=0',
      UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1:exitcode=67',
      RNNKIT_CONCURRENCY_SCALE: '0.5',
    },
    // The native-heavy suites: every kernel through the gradient checks, the async paths, the
    // argument checks, the crash regressions, the fuzzer and the concurrency scenarios. (Not the
    // soak: ASan's quarantine holds freed memory on purpose, so resident memory grows there.)
    suite: [
      'test/gradcheck.test.ts',
      'test/variants-gradcheck.test.ts',
      'test/lstm-structures.test.ts',
      'test/async.test.ts',
      'test/errors.test.ts',
      'test/validation.test.ts',
      'test/crashes.test.ts',
      'test/fuzz.test.ts',
      'test/concurrency.test.ts',
      'test/staged-steps.test.ts',
      'test/stacks.test.ts',
      'test/stack-native.test.ts',
      'test/gemm.test.ts',
      'test/weight-grad-kernel.test.ts',
      'test/projection-bias.test.ts',
      'test/native-bytes.test.ts',
      'test/model.test.ts',
    ],
  },
  tsan: {
    cmake: 'thread',
    dir: 'build-tsan',
    runtimes: ['libtsan.so'],
    env: {
      TSAN_OPTIONS: 'halt_on_error=1:exitcode=66:report_signal_unsafe=0:ignore_noninstrumented_modules=1',
      // ThreadSanitizer is ~5-15x slower: the concurrency scenarios run at a smaller scale.
      RNNKIT_CONCURRENCY_SCALE: '0.1',
      RNNKIT_RACE_ITERATIONS: '300',
    },
    suite: ['test/concurrency.test.ts', 'test/staged-steps.test.ts', 'test/async.test.ts', 'test/crashes.test.ts', 'test/stack-native.test.ts'],
  },
};

function run(cmd, args, opts = {}) {
  log(`${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts });
  if (r.status !== 0) {
    log(`failed: ${cmd} ${args.join(' ')} (${r.signal ? `signal ${r.signal}` : `exit ${r.status}`})`);
    process.exit(r.status || 1);
  }
}

function newestSource() {
  const walk = (dir) =>
    fs.readdirSync(dir, { withFileTypes: true }).reduce((newest, e) => {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) return Math.max(newest, walk(full));
      return /\.(cc|h)$/.test(e.name) ? Math.max(newest, fs.statSync(full).mtimeMs) : newest;
    }, 0);
  return Math.max(walk(path.join(root, 'native')), fs.statSync(path.join(root, 'CMakeLists.txt')).mtimeMs);
}

function addonOf(kind) {
  return path.join(root, KINDS[kind].dir, 'Release', 'rnnkit.node');
}

function build(kind, force) {
  const addon = addonOf(kind);
  if (!force && fs.existsSync(addon) && fs.statSync(addon).mtimeMs >= newestSource()) return;
  const cmakeJs = path.join(root, 'node_modules', 'cmake-js', 'bin', 'cmake-js');
  run(process.execPath, [cmakeJs, 'compile', '--out', KINDS[kind].dir, `--CDRNNKIT_SANITIZE=${KINDS[kind].cmake}`]);
}

function runtimePath(lib) {
  const r = spawnSync('g++', [`-print-file-name=${lib}`], { encoding: 'utf8' });
  const file = (r.stdout || '').trim();
  if (r.status !== 0 || !path.isAbsolute(file) || !fs.existsSync(file)) {
    log(`cannot find the sanitizer runtime ${lib} (g++ -print-file-name=${lib} gave '${file}'); install g++`);
    process.exit(1);
  }
  return file;
}

const [command, kind, ...files] = process.argv.slice(2);
if (!['build', 'test'].includes(command) || !KINDS[kind]) {
  console.error('usage: node scripts/sanitize.mjs build|test asan|tsan [test files…]');
  process.exit(2);
}
build(kind, command === 'build');
if (command === 'test') {
  const k = KINDS[kind];
  const env = {
    ...process.env,
    ...k.env,
    LD_PRELOAD: k.runtimes.map(runtimePath).join(':'),
    RNNKIT_ADDON: addonOf(kind),
  };
  const suite = files.length > 0 ? files : k.suite;
  log(`${kind}: ${suite.length} test files on ${path.relative(root, env.RNNKIT_ADDON)}`);
  // One test file at a time: the sanitizers multiply memory and time.
  run(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', ...suite], { env });
}
