/**
 * native.gemm (Dense and TimeDistributed run on it): results against a triple loop for both dtypes
 * and every transpose, and hostile arguments refused with a TypeError or RangeError — in a child
 * process, so a crash fails this test with its signal.
 */
import { test } from 'node:test';
import { assertChildOk, runNodeChild } from './helpers/child.js';

test('native.gemm: correct for every transpose and dtype; bad arguments are TypeErrors/RangeErrors, never a crash', (t) => {
  t.diagnostic(assertChildOk(runNodeChild('test/helpers/gemm-body.ts', []), 'gemm'));
});
