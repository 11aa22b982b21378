/**
 * Concurrent forwardAsync calls share the layer's prepared weights: memory grows by the calls' own
 * input- and output-sized buffers only, and no weight set is prepared or copied per call (body and
 * bounds: test/helpers/serve-memory-body.ts, run in a child process with --expose-gc).
 */
import { test } from 'node:test';
import path from 'node:path';

import { assertChildOk, repoRoot, runNodeChild } from './helpers/child.js';

test('50 concurrent forwardAsync on an LSTM(1024 → 1024): memory grows by the inputs and outputs only, one prepared weight set', (t) => {
  const res = runNodeChild(path.join(repoRoot, 'test', 'helpers', 'serve-memory-body.ts'), [], { nodeArgs: ['--expose-gc'], timeout: 300_000 });
  t.diagnostic(assertChildOk(res, 'serve-memory'));
});
