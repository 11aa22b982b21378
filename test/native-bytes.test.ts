/**
 * What V8 is told of rnnkit's native memory (native/binding/grid_binding.cc, account_native_bytes):
 * only the bytes of live stacks and runs beyond a budget. A training loop that releases its runs
 * reports nothing (each report of a run's activations pushed V8 towards a full mark-compact: D2
 * had ~18 in 4 s), and runs kept without release() are reported past the budget, so that V8 still
 * collects dropped ones. And a dropped run is collectable at all: a layer's weak bookkeeping of
 * its runs once kept every run alive through the collections its own calls set off, once 64 were
 * alive at once (then no dropped run was ever freed: GBs in a loop). In a child process
 * (test/helpers/native-bytes-body.ts, with --expose-gc): it holds hundreds of MB of training runs.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';

import { assertChildOk, repoRoot, runNodeChild } from './helpers/child.js';

const MB = 2 ** 20;

test('native memory: released runs are never reported to V8; held runs are reported past the budget, exactly, and the reports follow releases and collections down; dropped runs are collectable', (t) => {
  const res = runNodeChild(path.join(repoRoot, 'test', 'helpers', 'native-bytes-body.ts'), [], { nodeArgs: ['--expose-gc'], timeout: 120_000 });
  const f = JSON.parse(assertChildOk(res, 'native-bytes').slice(3)) as {
    runBytes: number; budget: number; calls: number; maxEnvBytes: number; maxReported: number; released: number; collected: number; smallLeft: number;
  };
  t.diagnostic(`run ${(f.runBytes / MB).toFixed(1)} MB, budget ${(f.budget / MB).toFixed(0)} MB; ${f.calls} runs held: peak live ${(f.maxEnvBytes / MB).toFixed(0)} MB, peak reported ${(f.maxReported / MB).toFixed(0)} MB; ${f.released} released, ${f.collected} collected; 100 dropped small runs: ${f.smallLeft} left after a collection`);
  assert.ok(f.maxReported >= 3 * f.runBytes && f.maxReported === f.maxEnvBytes - f.budget, 'the held runs past the budget were reported');
  assert.ok(f.smallLeft <= 1, `${f.smallLeft} dropped runs survived a collection`);
});
