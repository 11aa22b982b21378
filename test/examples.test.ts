/**
 * The small examples learn what they claim, on small fast configurations (fixed seeds):
 *  - seq-classification (sequence → one): held-out accuracy > 0.9.
 *  - one-to-seq (one → sequence): held-out per-step accuracy > 0.9.
 *  - seq2seq-reverse (encoder–decoder, layer API): exact-match reversal of held-out strings of length 4–5 > 0.5.
 *  - seq-tagging (synchronous tagging, bidirectional): held-out per-step accuracy > 0.95.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { run as runClassification } from '../examples/seq-classification.js';
import { run as runOneToSeq } from '../examples/one-to-seq.js';
import { run as runReverse } from '../examples/seq2seq-reverse.js';
import { run as runTagging } from '../examples/seq-tagging.js';

test('seq-classification: more odd than even digits, test accuracy > 0.9', async () => {
  const r = await runClassification({ train: 1000, test: 500, epochs: 8, verbose: 0 });
  console.log(`seq-classification: test accuracy ${r.accuracy.toFixed(3)}`);
  assert.ok(r.accuracy > 0.9, `accuracy ${r.accuracy}`);
});

test('one-to-seq: d, d+s, d+2s, … from one vector, per-step accuracy > 0.9', async () => {
  const r = await runOneToSeq({ train: 1000, test: 300, epochs: 8, verbose: 0 });
  console.log(`one-to-seq: per-step test accuracy ${r.accuracy.toFixed(3)}`);
  assert.ok(r.accuracy > 0.9, `accuracy ${r.accuracy}`);
});

test('seq2seq-reverse: greedy exact-match reversal of held-out strings > 0.5', async () => {
  const r = await runReverse({ steps: 600, test: 200, verbose: 0 });
  console.log(`seq2seq-reverse: exact match ${r.exactMatch.toFixed(3)}, per digit ${r.perDigit.toFixed(3)}; ${r.examples.slice(0, 3).join(', ')}`);
  assert.ok(r.exactMatch > 0.5, `exact match ${r.exactMatch}`);
});

test('seq-tagging: "equals the previous digit", per-step accuracy > 0.95', async () => {
  const r = await runTagging({ train: 1000, test: 300, epochs: 8, verbose: 0 });
  console.log(`seq-tagging: per-step test accuracy ${r.accuracy.toFixed(3)} (majority baseline ${r.baseline.toFixed(3)})`);
  assert.ok(r.accuracy > 0.95, `accuracy ${r.accuracy}`);
  assert.ok(r.accuracy > r.baseline + 0.1);
});
