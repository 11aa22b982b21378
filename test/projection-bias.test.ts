/**
 * The input projection of a float32 layer adds its bias inside rnnkit's packed GEMM tiles, as they
 * store each element once its sum over the whole input is complete (after the last of the K chunks
 * the kernel cuts the input width into). Checked against the same layers in float64 (BLAS, then a
 * separate bias pass): input widths of one, three and five 256-wide K chunks (I = 37, 600, 1030),
 * batches that reach the 1-, 2- and 8-row tiles and several row blocks (B = 1, 2, 9, 70), widths of
 * gate columns that are not a multiple of the 32- or 16-column panels (H = 5, 37), random
 * non-zero biases. A bias added at every K chunk, on the wrong columns or not at all is off by the
 * bias's size (~0.5); the float32 rounding here is ~1e-6. Runs under every ISA of `npm run test:isa`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { GRU, LSTM, SimpleRNN, Tensor } from '../lib/index.js';

let seed = 23;
const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;

type Opts = { units: number; inputSize: number; returnSequences: boolean; seed: number; dtype?: 'float64' };
const kinds: [string, (o: Opts) => LSTM | GRU | SimpleRNN][] = [
  ['LSTM', (o) => new LSTM(o)],
  ['GRU', (o) => new GRU(o)],
  ['GRU resetAfter false', (o) => new GRU({ ...o, resetAfter: false })],
  ['SimpleRNN', (o) => new SimpleRNN(o)],
];

for (const [name, make] of kinds) {
  test(`float32 forward with biases matches float64 on the projection's K chunks and tiles: ${name}`, (t) => {
    let worst = 0;
    for (const I of [37, 600, 1030]) {
      for (const H of [5, 37]) {
        for (const B of [1, 2, 9, 70]) {
          const T = 3;
          const opts = { units: H, inputSize: I, returnSequences: true, seed: 3 };
          const f32 = make(opts), f64 = make({ ...opts, dtype: 'float64' });
          f32.build(I);
          f64.build(I);
          const sd32 = f32.stateDict(), sd64 = f64.stateDict();
          for (const [k, w] of Object.entries(sd32)) {
            const bias = k.startsWith('bias');
            // Small weights (the sums stay near 1 whatever I), biases of ±0.5.
            for (let i = 0; i < w.size; i++) w.data[i] = bias ? 0.5 * rnd() : rnd() / Math.sqrt(I + H);
            sd64[k].data.set(w.data);
          }
          f32.markWeightsChanged();
          f64.markWeightsChanged();
          const xs = Float32Array.from({ length: B * T * I }, rnd);
          const y32 = f32.forward(Tensor.from(xs, [B, T, I])).output.data;
          const y64 = f64.forward(Tensor.from(Float64Array.from(xs), [B, T, I])).output.data;
          for (let i = 0; i < y64.length; i++) {
            const err = Math.abs(y32[i] - y64[i]);
            worst = Math.max(worst, err);
            if (err > 2e-5) assert.fail(`${name} I=${I} H=${H} B=${B}: output[${i}] ${y32[i]} vs float64 ${y64[i]}`);
          }
        }
      }
    }
    assert.ok(worst > 0, 'float32 and float64 outputs identical: the comparison saw no float32 rounding');
    t.diagnostic(`worst difference ${worst.toExponential(2)}`);
  });
}
