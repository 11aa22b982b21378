/**
 * Regression tests for the crashes found by probing (each crashed, hung or was wrong before its
 * fix). Every case runs in its own child process (test/helpers/crash-cases.ts): a regression fails
 * its test with the signal instead of killing the runner.
 */
import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
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
crashCase('set-num-threads-never-waits', 'setNumThreads during async work returns at once, deferring the change (waited for the pool before)');
crashCase('worker-only-loads-addon', 'an addon loaded only by a worker_thread stays mapped for its pool threads (SIGSEGV before)');
crashCase('gradients-independent-of-threads', 'weight and input gradients are bit-identical whatever the thread count (last bits differed before)');
crashCase('nan-propagates', 'NaN propagates through ReLU and the fast exp (0 before; UBSan shift-of-negative)');
crashCase('training-memory-limit', 'training past the memory limit is a RangeError stating the size; inference of a long sequence runs');

// A real thread limit: RLIMIT_NPROC, which the kernel enforces for a non-root user only, so as root
// the child drops to 'nobody' first (setpriv). The limit leaves room for Node's own threads.
test('thread creation refused by the system: setNumThreads throws an Error, the pool keeps working (SIGABRT before)', (t) => {
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  const prefix = ['prlimit', '--nproc=40', ...(root ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] : []), '--'];
  const prlimitWorks = spawnSync('prlimit', ['--version']).status === 0;
  if (!prlimitWorks) throw new Error('prlimit (util-linux) is needed for this test');
  // 'nobody' needs a writable cache for tsx.
  const env = root ? { TMPDIR: os.tmpdir(), HOME: os.tmpdir() } : {};
  t.diagnostic(`thread-limit: ${assertChildOk(runNodeChild(script, ['thread-limit'], { prefix, env }), 'thread-limit')}`);
});
