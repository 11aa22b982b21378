/**
 * Concurrency stress for the native thread pool and the Promise forms, each scenario in its own
 * child process (test/helpers/concurrency-body.ts), so a crash or a hang fails one test with what
 * happened. Every result is compared bit for bit with the same job run sequentially, synchronously,
 * on one pool thread first:
 *  - thousands of concurrent forwardAsync / backwardAsync calls (families, dtypes, shapes mixed,
 *    some large enough for the pool to split), with more pool threads than cores;
 *  - setNumThreads changed over and over while async work is in flight (the longest setNumThreads
 *    call and the event-loop delay are printed, not asserted);
 *  - four worker_threads each running many async and sync calls at once, results posted back;
 *  - workers that process.exit() or are terminate()d with calls in flight, round after round,
 *    while the main thread runs its own async calls; the process must then exit 0 by itself.
 *
 * RNNKIT_CONCURRENCY_SCALE (default 1) scales the counts down for the sanitizer builds (e.g. 0.1
 * under ThreadSanitizer); RNNKIT_CONCURRENCY_TIMEOUT_MS (default 180000) bounds each child.
 */
import { test } from 'node:test';
import path from 'node:path';

import { assertChildOk, repoRoot, runNodeChild } from './helpers/child.js';

const body = path.join(repoRoot, 'test', 'helpers', 'concurrency-body.ts');
const timeout = Number(process.env.RNNKIT_CONCURRENCY_TIMEOUT_MS ?? 180_000);

function scenario(name: string, title: string): void {
  test(title, (t) => {
    t.diagnostic(assertChildOk(runNodeChild(body, [name], { timeout }), name));
  });
}

scenario('many-calls', 'thousands of concurrent forwardAsync/backwardAsync calls with more pool threads than cores are bit-identical to 1 thread');
scenario('resize-inflight', 'setNumThreads changed repeatedly while async work is in flight: results unchanged, setNumThreads never blocks');
scenario('workers', 'four worker_threads running many async and sync calls at once produce the main thread results');
scenario('workers-ending', 'workers exiting or terminated with calls in flight, 20 rounds: main-thread results stay right and the process exits 0');
