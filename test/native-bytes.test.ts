/**
 * What V8 is told of rnnkit's native memory (native/binding/grid_binding.cc, account_native_bytes):
 * only the bytes of live stacks and runs beyond a budget. A training loop that releases its runs
 * reports nothing (each report of a run's activations pushed V8 towards a full mark-compact: D2
 * had ~18 in 4 s), and runs dropped without release() are still reported past the budget and
 * collected. In a child process (test/helpers/native-bytes-body.ts): it runs hundreds of MB of
 * training runs through the collector.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';

import { assertChildOk, repoRoot, runNodeChild } from './helpers/child.js';

const MB = 2 ** 20;

test('native memory: released runs are never reported to V8; dropped runs are reported past the budget and collected', (t) => {
  const res = runNodeChild(path.join(repoRoot, 'test', 'helpers', 'native-bytes-body.ts'), [], { timeout: 120_000 });
  const f = JSON.parse(assertChildOk(res, 'native-bytes').slice(3)) as {
    runBytes: number; budget: number; calls: number; maxEnvBytes: number; maxReported: number; collected: number;
  };
  t.diagnostic(`run ${(f.runBytes / MB).toFixed(1)} MB, budget ${(f.budget / MB).toFixed(0)} MB; ${f.calls} dropped runs: peak live ${(f.maxEnvBytes / MB).toFixed(0)} MB, peak reported ${(f.maxReported / MB).toFixed(0)} MB, ${f.collected} collected`);
  // V8 starts collecting once the reported bytes pass its external-memory limit (64 MB above
  // what it last saw): the live bytes must stay within the budget plus a few limits' worth.
  assert.ok(f.maxEnvBytes < f.budget + 256 * MB, `dropped runs piled up to ${(f.maxEnvBytes / MB).toFixed(0)} MB`);
  assert.ok(f.collected > f.calls / 4, `only ${f.collected} of ${f.calls} dropped runs were collected`);
});
