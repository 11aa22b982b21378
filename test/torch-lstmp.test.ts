/**
 * LSTM with a projection (LSTMP) against PyTorch's torch.nn.LSTM(proj_size = P): every case of
 * test/fixtures/torch_lstmp.json (float64 references from test/fixtures/gen_torch.py) through the
 * public LSTM layer with projSize, float64 and float32, comparing y, hN, cN and every gradient of
 * L = sum(y ⊙ dy) + sum(hN ⊙ dhN) + sum(cN ⊙ dcN). Fixtures are time-major; the layer is batch-first.
 * Tolerances as in torch-golden.test.ts.
 */
import { describe, test } from 'node:test';
import { readFileSync } from 'node:fs';

import { LSTM, Tensor, type DType } from '../lib/index.js';
import { assertClose, batchToTime, timeToBatch } from './helpers/compare.js';

const TOL = {
  float64: { output: 1e-10, grad: 1e-10, floor: 1e-3 },
  float32: { output: 1e-5, grad: 1e-4, floor: 0.02 },
} as const;

const PARAMS = ['weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', 'bias_hh_l0', 'weight_hr_l0'] as const;

interface ProjCase {
  name: string;
  T: number; B: number; I: number; H: number; P: number;
  hasInitialState: boolean;
  x: number[]; h0: number[] | null; c0: number[] | null;
  weights: Record<(typeof PARAMS)[number], number[]>;
  dy: number[]; dhN: number[]; dcN: number[];
  y: number[]; hN: number[]; cN: number[];
  grads: Record<'x' | (typeof PARAMS)[number], number[]> & { h0?: number[]; c0?: number[] };
}

const fixture = JSON.parse(readFileSync(new URL('./fixtures/torch_lstmp.json', import.meta.url), 'utf8')) as { cases: ProjCase[] };

function typed(dtype: DType, values: number[]): Float32Array | Float64Array {
  return dtype === 'float64' ? Float64Array.from(values) : Float32Array.from(values);
}

for (const dtype of ['float64', 'float32'] as const) {
  describe(`LSTMP against PyTorch (${dtype})`, () => {
    for (const c of fixture.cases) {
      test(c.name, () => {
        const { T, B, I, H, P } = c;
        const tol = TOL[dtype];
        const layer = new LSTM({ inputSize: I, units: H, projSize: P, returnSequences: true, returnState: true, dtype });
        layer.loadStateDict(Object.fromEntries(PARAMS.map((n) => [n, Tensor.from(typed(dtype, c.weights[n]), layer.parameterShapes()[n], dtype)])));
        const x = Tensor.from(timeToBatch(typed(dtype, c.x), T, B, I), [B, T, I]);
        const initialState = c.hasInitialState
          ? [Tensor.from(typed(dtype, c.h0!), [B, P]), Tensor.from(typed(dtype, c.c0!), [B, H])]
          : undefined;
        const out = layer.forward(x, { initialState, training: true });
        const o = { rtol: tol.output, floor: tol.floor };
        assertClose(batchToTime(out.output.data, B, T, P), c.y, { ...o, label: `${c.name} y`, shape: [T, B, P] });
        assertClose(out.states[0].data, c.hN, { ...o, label: `${c.name} hN`, shape: [B, P] });
        assertClose(out.states[1].data, c.cN, { ...o, label: `${c.name} cN`, shape: [B, H] });

        const dOut = Tensor.from(timeToBatch(typed(dtype, c.dy), T, B, P), [B, T, P]);
        const g = layer.backward(out.run!, dOut, { dStates: [Tensor.from(typed(dtype, c.dhN), [B, P]), Tensor.from(typed(dtype, c.dcN), [B, H])] });
        const go = { rtol: tol.grad, floor: tol.floor };
        assertClose(batchToTime(g.input.data, B, T, I), c.grads.x, { ...go, label: `${c.name} dx`, shape: [T, B, I] });
        if (c.hasInitialState) {
          assertClose(g.initialState[0].data, c.grads.h0!, { ...go, label: `${c.name} dh0`, shape: [B, P] });
          assertClose(g.initialState[1].data, c.grads.c0!, { ...go, label: `${c.name} dc0`, shape: [B, H] });
        }
        for (const n of PARAMS) assertClose(g.params[n].data, c.grads[n], { ...go, label: `${c.name} d${n}` });
      });
    }
  });
}
