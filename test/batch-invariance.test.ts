/**
 * Batch invariance of the float32 kernels: every row of a batched forward is bit-identical to that
 * row run alone, for any batch size — the 1- and 2-row tiles of the packed GEMM (which cover
 * several panels side by side), the near-equal row blocks of larger batches, and K cut into chunks
 * (inner dimensions above 256) all sum each element in one chain over k in order. The stream engine
 * relies on it to batch streams without padding (lib/serve/stream.ts). The ISA matrix (npm run
 * test:isa) runs this file under each kernel build.
 */
import { test } from 'node:test';

import { GRU, LSTM, SimpleRNN, Tensor, type Recurrent } from '../lib/index.js';
import { assertBitIdentical, rng, uniform32 } from './helpers/compare.js';

// Odd widths (column edges inside panels), inner dimensions above 256 (K chunks) and below.
const LAYERS: [string, () => Recurrent, number][] = [
  ['LSTM(300 → 70)', () => new LSTM({ inputSize: 300, units: 70, returnSequences: true, seed: 1 }), 300],
  ['LSTM(20 → 257), projSize 33', () => new LSTM({ inputSize: 20, units: 257, projSize: 33, returnSequences: true, seed: 2 }), 20],
  ['GRU(9 → 300)', () => new GRU({ inputSize: 9, units: 300, returnSequences: true, seed: 3 }), 9],
  ['SimpleRNN(5 → 17)', () => new SimpleRNN({ inputSize: 5, units: 17, returnSequences: true, seed: 4 }), 5],
];
const BATCHES = [1, 2, 3, 5, 8, 9, 13, 20, 33];
const T = 4;

for (const [name, make, I] of LAYERS) {
  test(`${name}: each row of batches ${BATCHES.join(', ')} is bit-identical to the row run alone`, () => {
    const layer = make();
    const r = rng(I);
    const maxB = Math.max(...BATCHES);
    const rows = Array.from({ length: maxB }, () => uniform32(r, T * I));
    const alone = rows.map((x) => layer.forward(Tensor.from(x, [1, T, I])).output.data);
    const W = alone[0].length / T;
    for (const B of BATCHES) {
      const x = new Float32Array(B * T * I);
      rows.slice(0, B).forEach((row, b) => x.set(row, b * T * I));
      const y = layer.forward(Tensor.from(x, [B, T, I])).output.data;
      for (let b = 0; b < B; b++) assertBitIdentical(y.subarray(b * T * W, (b + 1) * T * W), alone[b], `${name}, batch ${B}, row ${b}`);
    }
  });
}
