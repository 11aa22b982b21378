/**
 * A short memory soak in a child process (test/helpers/soak-body.ts, with --expose-gc): forward,
 * forwardAsync and training steps (forward training:true + backward/backwardAsync + Adam) on
 * LSTM-with-projection, LSTM, GRU and SimpleRNN (float32); after a warm-up, rss, heapUsed, external
 * and arrayBuffers must stop growing (bounds and their reasoning in the body). `npm run soak` runs
 * the long version (scripts/soak.mjs).
 *
 * RNNKIT_SOAK_ITERATIONS (default 3000) sets the length, e.g. lower for the sanitizer builds.
 */
import { test } from 'node:test';
import path from 'node:path';

import { assertChildOk, repoRoot, runNodeChild } from './helpers/child.js';

const iterations = process.env.RNNKIT_SOAK_ITERATIONS ?? '3000';

test(`memory stops growing after a warm-up (${iterations} iterations of forward, forwardAsync and training steps)`, (t) => {
  const res = runNodeChild(path.join(repoRoot, 'test', 'helpers', 'soak-body.ts'), ['--iterations', iterations], {
    nodeArgs: ['--expose-gc'],
    timeout: 300_000,
  });
  for (const line of res.stdout.split('\n')) if (line.startsWith('  ')) t.diagnostic(line.trim());
  t.diagnostic(assertChildOk(res, 'soak'));
});
