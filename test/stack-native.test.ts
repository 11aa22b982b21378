/**
 * The raw native stack surface under hostile input, in a child process (a crash fails this test
 * with its signal instead of killing the runner): test/helpers/stack-native-body.ts.
 */
import { test } from 'node:test';
import path from 'node:path';

import { assertChildOk, repoRoot, runNodeChild } from './helpers/child.js';

test('prepareStack / stackForward / stackBackward / release: hostile input is a TypeError or RangeError, never a crash', (t) => {
  t.diagnostic(assertChildOk(runNodeChild(path.join(repoRoot, 'test', 'helpers', 'stack-native-body.ts'), []), 'stack-native'));
});
