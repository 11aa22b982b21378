/**
 * Where a native call's outputs live (one buffer for the small ones, one each for the large ones),
 * in a child process: test/helpers/outputs-body.ts.
 */
import { test } from 'node:test';
import path from 'node:path';

import { assertChildOk, repoRoot, runNodeChild } from './helpers/child.js';

test('outputs: small ones share one buffer without overlapping, large ones have their own, each holds its own values', (t) => {
  t.diagnostic(assertChildOk(runNodeChild(path.join(repoRoot, 'test', 'helpers', 'outputs-body.ts'), []), 'outputs'));
});
