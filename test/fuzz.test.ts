/**
 * Property-based fuzzing with fast-check (test/helpers/fuzz-body.ts), run once here as a bounded
 * run in a child process, so that a crash fails this test instead of killing the test runner:
 *   - layers: random valid SimpleRNN / LSTM / GRU layers with every option, float32 against float64,
 *     sync against async, inference against training, n threads against one (bit-identical);
 *   - public: hostile values through the public API;
 *   - native: hostile configs and buffers on the raw native surface, sync and async.
 * The seed is fixed (RNNKIT_FUZZ_SEED overrides it); RNNKIT_FUZZ_RUNS scales the run (e.g. lower it
 * for the sanitizer builds). The long run with a random seed is `node scripts/fuzz.mjs`.
 *
 * On a property failure the child prints fast-check's counterexample, seed and path, and a command
 * that replays it. When the child dies without a report (a signal, an abort), the property that was
 * running is run again with RNNKIT_FUZZ_TRACE=1 to name the last case it started.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';

import { assertChildOk, repoRoot, runNodeChild } from './helpers/child.js';

const body = path.join(repoRoot, 'test', 'helpers', 'fuzz-body.ts');
const PROPERTIES = ['layers', 'public', 'native'];

test('fuzzing (fast-check): valid layers agree across dtypes, sync/async and threads; hostile input to the public API and the raw native surface never crashes', (t) => {
  const res = runNodeChild(body, [], { timeout: 300_000 });
  const stdout = res.stdout ?? '';
  const reported = stdout.includes('FAIL property');
  if ((res.status !== 0 || res.signal) && !reported) {
    // No fast-check report: the process died. Find the property it was in and the case it started.
    const only = process.env.RNNKIT_FUZZ_ONLY?.split(',').filter(Boolean) ?? PROPERTIES;
    const running = only.find((p) => !stdout.includes(`property ${p}:`)) ?? only[only.length - 1];
    const traced = runNodeChild(body, [], { timeout: 600_000, env: { RNNKIT_FUZZ_TRACE: '1', RNNKIT_FUZZ_ONLY: running } });
    const lastCase = (traced.stderr ?? '').split('\n').filter((l) => l.startsWith('case ')).pop();
    t.diagnostic(`the child died in property '${running}'; replayed with tracing: ${traced.signal ?? `exit ${traced.status}`}`);
    t.diagnostic(`last case started: ${lastCase ?? '(none traced)'}`);
  }
  const line = assertChildOk(res, 'fuzz-body');
  for (const l of stdout.split('\n')) {
    if (/^(seed=|property |time )/.test(l)) t.diagnostic(l);
  }
  t.diagnostic(line);
  assert.match(line, /^ok: \d+ cases \(\d+ valid layers, \d+ rejected inputs, \d+ async\) seed=-?\d+$/);
});
