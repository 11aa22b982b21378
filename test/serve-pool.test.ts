/** ModelPool: models loaded once per piscina worker from saved files (body: test/helpers/serve-pool-body.ts, in a child process). */
import { test } from 'node:test';
import path from 'node:path';

import { assertChildOk, repoRoot, runNodeChild } from './helpers/child.js';

test('ModelPool: 24 concurrent predictions on 2 workers bit-identical to the main thread, each model loaded once per worker', (t) => {
  t.diagnostic(assertChildOk(runNodeChild(path.join(repoRoot, 'test', 'helpers', 'serve-pool-body.ts'), [], { timeout: 120_000 }), 'serve-pool'));
});
