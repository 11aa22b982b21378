/**
 * The float32 weight gradients of BPTT (dW = dGatesᵀ · inputs and dGatesᵀ · states; on an AVX-512
 * or AVX2 CPU rnnkit's own gemm_tn_packed tiles, else BLAS) against the same layers in float64
 * (BLAS dgemm, a separate code path), on shapes that reach every edge of both kernels: gate rows
 * that are not a multiple of the 8- or 6-row tile or of the 32-row blocks (H = 5, 13, 21), widths
 * that are not a multiple of the 32-column panel or of its 16-column halves (I = 3, 37, 53; states
 * 5, 13, 21; 42 into a second layer), T·B above the 128-row K chunk (one, two and three chunks),
 * projections and both GRU forms, bidirectional and stacked. Runs under every ISA of
 * `npm run test:isa`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { GRU, LSTM, SimpleRNN, Tensor, getNumThreads } from '../lib/index.js';

type Opts = { units: number; inputSize: number; numLayers: number; bidirectional: boolean; returnSequences: boolean; seed: number; dtype?: 'float64' };

type Make = (o: Opts) => LSTM | GRU | SimpleRNN;
const kinds: [string, Make][] = [
  ['LSTM', (o) => new LSTM(o)],
  ['LSTM projSize 4', (o) => new LSTM({ ...o, projSize: 4 })],
  ['GRU', (o) => new GRU(o)],
  ['GRU resetAfter false', (o) => new GRU({ ...o, resetAfter: false })],
  ['SimpleRNN', (o) => new SimpleRNN(o)],
];

let seed = 11;
const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;

for (const [name, make] of kinds) {
  test(`float32 weight gradients match float64: ${name}`, (t) => {
    let worst = 0;
    for (const [H, I, B, T, numLayers, bidirectional] of [
      [5, 3, 2, 7, 1, false], [13, 37, 5, 70, 1, false], [13, 37, 4, 150, 2, true], [32, 64, 8, 40, 1, false],
      [21, 53, 3, 60, 2, true],
    ] as [number, number, number, number, number, boolean][]) {
      const opts = { units: H, inputSize: I, numLayers, bidirectional, returnSequences: true, seed: 5 };
      const f32 = make(opts), f64 = make({ ...opts, dtype: 'float64' as const });
      f32.build(I);
      f64.build(I);
      const sd32 = f32.stateDict(), sd64 = f64.stateDict();
      for (const [k, t] of Object.entries(sd32)) {
        for (let i = 0; i < t.size; i++) t.data[i] = 0.5 * rnd();
        sd64[k].data.set(t.data);
      }
      f32.markWeightsChanged();
      f64.markWeightsChanged();
      const xs = Float32Array.from({ length: B * T * I }, rnd);
      const width = (bidirectional ? 2 : 1) * (name.includes('proj') ? 4 : H);
      const dys = Float32Array.from({ length: B * T * width }, rnd);
      const grads = (layer: LSTM | GRU | SimpleRNN, f64: boolean) => {
        const x = Tensor.from(f64 ? Float64Array.from(xs) : xs, [B, T, I]);
        const dy = Tensor.from(f64 ? Float64Array.from(dys) : dys, [B, T, width]);
        const { run } = layer.forward(x, { training: true });
        const g = layer.backward(run!, dy).params;
        run!.release();
        return g;
      };
      const g32 = grads(f32, false), g64 = grads(f64, true);
      for (const [k, want] of Object.entries(g64)) {
        const got = g32[k];
        assert.ok(got, `${k} missing from the float32 gradients`);
        let scale = 0;
        for (let i = 0; i < want.size; i++) scale = Math.max(scale, Math.abs(want.data[i]));
        for (let i = 0; i < want.size; i++) {
          const err = Math.abs(got.data[i] - want.data[i]) / Math.max(1, scale);
          worst = Math.max(worst, err);
          if (err > 2e-5) assert.fail(`${name} H=${H} I=${I} B=${B} T=${T} L=${numLayers} bi=${bidirectional}: ${k}[${i}] ${got.data[i]} vs float64 ${want.data[i]}`);
        }
      }
    }
    assert.ok(worst > 0, 'float32 and float64 gradients identical: the comparison saw no float32 rounding');
    t.diagnostic(`worst relative difference ${worst.toExponential(2)} (${getNumThreads()} threads)`);
  });
}
