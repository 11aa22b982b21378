/**
 * Regression tests for the crashes found by probing (each crashed, hung or was wrong before its
 * fix). Every case runs in its own child process (test/helpers/crash-cases.ts): a regression fails
 * its test with the signal instead of killing the runner.
 */
import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { assertChildOk, repoRoot, runNodeChild, type ChildOptions } from './helpers/child.js';

const script = path.join(repoRoot, 'test', 'helpers', 'crash-cases.ts');

function crashCase(name: string, title: string, opts: ChildOptions = {}): void {
  test(title, (t) => {
    t.diagnostic(`${name}: ${assertChildOk(runNodeChild(script, [name], opts), name)}`);
  });
}

crashCase('backward-oob-simple-rnn', 'SimpleRNN(8192) backward no longer reads past W_hh (SIGSEGV before)');
crashCase('backward-oob-lstm-projection', 'LSTM(2048, projSize 1) backward no longer reads past W_hh (SIGSEGV before)');
crashCase('backward-oob-small', 'small SimpleRNN / LSTMP / GRU backward stays inside W_hh (ASan heap-buffer-overflow before)');
crashCase('pool-race', 'more pool threads than cores: thousands of forwards bit-identical to 1 thread (segfault / hang / wrong before)', {
  timeout: 300_000,
});
crashCase('worker-exit-mid-call', 'a worker_thread that exits during forwardAsync does not abort the process (SIGABRT before)');
crashCase('worker-terminate-mid-call', 'worker.terminate() during forwardAsync does not abort the process (SIGABRT before)');
crashCase('getter-resizes-checked-buffer', 'a getter that shrinks an already-read buffer gets a RangeError naming it (SIGSEGV before)');
crashCase('getter-transfers-checked-buffer', 'a getter that transfers an already-read buffer gets a TypeError naming it (use-after-free before)', {
  nodeArgs: ['--expose-gc'],
});
// (Three 34-GFLOP calls: ~140 s on the TSan build, so the hang guard is longer than the default.)
crashCase('set-num-threads-never-waits', 'setNumThreads during async work returns at once, deferring the change (waited for the pool before)', {
  timeout: 300_000,
});
crashCase('worker-only-loads-addon', 'an addon loaded only by a worker_thread stays mapped for its pool threads (SIGSEGV before)');
crashCase('gradients-independent-of-threads', 'weight and input gradients are bit-identical whatever the thread count (last bits differed before)');
crashCase('nan-propagates', 'NaN propagates through ReLU and the fast exp (0 before; UBSan shift-of-negative)');
crashCase('training-memory-limit', 'training past the memory limit is a RangeError stating the size; inference of a long sequence runs');

// A real thread limit. As root (for whom the kernel never enforces RLIMIT_NPROC) the child runs in
// a pids cgroup of its own (cgroup v1 'pids' or v2 with the pids controller); otherwise under
// RLIMIT_NPROC (prlimit). The limit leaves room for Node's own threads.
const PIDS_LIMIT = 40;

function pidsCgroup(): string | null {
  const v1 = '/sys/fs/cgroup/pids';
  const v2 = '/sys/fs/cgroup';
  for (const base of [v1, v2]) {
    try {
      if (base === v2 && !fs.readFileSync(path.join(v2, 'cgroup.controllers'), 'utf8').split(/\s+/).includes('pids')) continue;
      const dir = fs.mkdtempSync(path.join(base, 'rnnkit-test-'));
      fs.writeFileSync(path.join(dir, 'pids.max'), String(PIDS_LIMIT));
      return dir;
    } catch {
      // not available here: try the next one
    }
  }
  return null;
}

test('thread creation refused by the system: setNumThreads throws an Error, the pool keeps working (SIGABRT before)', (t) => {
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  const cgroup = root ? pidsCgroup() : null;
  try {
    let prefix: string[];
    let env: NodeJS.ProcessEnv = {};
    if (cgroup) {
      // The shell joins the cgroup, then becomes node: every thread node starts counts. A sanitizer
      // preload (scripts/sanitize.mjs) is kept off the shell (TSan's runtime crashes sh) and handed
      // back to node.
      prefix = ['sh', '-c', `echo $$ > ${cgroup}/cgroup.procs && LD_PRELOAD="$RNNKIT_CHILD_PRELOAD" exec "$@"`, 'sh'];
      env = { LD_PRELOAD: '', RNNKIT_CHILD_PRELOAD: process.env.LD_PRELOAD ?? '' };
    } else {
      if (root) throw new Error('as root this test needs a pids cgroup (cgroup v1 pids, or v2 with the pids controller)');
      if (spawnSync('prlimit', ['--version']).status !== 0) throw new Error('prlimit (util-linux) is needed for this test');
      prefix = ['prlimit', `--nproc=${PIDS_LIMIT}`, '--'];
    }
    t.diagnostic(`limit: ${cgroup ? `pids cgroup ${cgroup}` : 'RLIMIT_NPROC'} = ${PIDS_LIMIT}`);
    t.diagnostic(`thread-limit: ${assertChildOk(runNodeChild(script, ['thread-limit'], { prefix, env }), 'thread-limit')}`);
  } finally {
    if (cgroup) fs.rmdirSync(cgroup);
  }
});
