/**
 * Plain float64 TypeScript references of SimpleRNN and GRU with the cell options (any activation of
 * the ONNX set, ONNX clip), written from the equations. PyTorch layout; GRU gate order r, z, n.
 *
 * SimpleRNN:  h_t = act(clip(W x_t + b_ih + R h_{t-1} + b_hh))
 * GRU:        r = σ(clip(W_r x + b_ir + R_r h + b_hr)),  z = σ(clip(W_z x + b_iz + R_z h + b_hz))
 *   resetAfter (linear before reset, ONNX lbr=1):  n = act(clip(W_n x + b_in + r ⊙ (R_n h + b_hn)))
 *   reset before (ONNX lbr=0, tfjs):               n = act(clip(W_n x + b_in + R_n (r ⊙ h) + b_hn))
 *   h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}
 * σ = the gate ("recurrent") activation. x is time-major [T, B, I] in processing order.
 * The LSTM is in ./lstm-variants-reference.ts.
 */
import type { ActivationSpec } from '../../lib/index.js';
import { act, applyAct, clamp, type KinkTracker } from './activation-reference.js';

export interface SimpleWeights {
  weight_ih_l0: ArrayLike<number>;
  weight_hh_l0: ArrayLike<number>;
  bias_ih_l0?: ArrayLike<number>;
  bias_hh_l0?: ArrayLike<number>;
}

export interface RnnGruReferenceInput {
  cell: 'rnn' | 'gru';
  T: number;
  B: number;
  I: number;
  H: number;
  x: ArrayLike<number>;
  h0?: ArrayLike<number>;
  weights: SimpleWeights;
  /** SimpleRNN activation / GRU candidate activation; default tanh. */
  activation?: ActivationSpec;
  /** GRU r, z activation; default sigmoid. */
  recurrentActivation?: ActivationSpec;
  /** GRU only; default true. */
  resetAfter?: boolean;
  clip?: number;
  tracker?: KinkTracker;
}

export function rnnGruReference(inp: RnnGruReferenceInput): { y: Float64Array; hN: Float64Array } {
  const { cell, T, B, I, H, x, weights: w, tracker } = inp;
  const G = cell === 'gru' ? 3 : 1;
  if (w.weight_ih_l0.length !== G * H * I || w.weight_hh_l0.length !== G * H * H) throw new Error('rnnGruReference: weight shapes');
  const ga = act(inp.activation ?? 'tanh');
  const fa = act(inp.recurrentActivation ?? 'sigmoid');
  const clip = inp.clip ?? 0;
  const resetAfter = inp.resetAfter ?? true;
  const bih = (k: number) => w.bias_ih_l0?.[k] ?? 0;
  const bhh = (k: number) => w.bias_hh_l0?.[k] ?? 0;
  const xs = (k: number, t: number, b: number): number => {
    let s = 0;
    for (let q = 0; q < I; q++) s += w.weight_ih_l0[k * I + q] * x[(t * B + b) * I + q];
    return s;
  };
  const hs = (k: number, v: ArrayLike<number>, off: number): number => {
    let s = 0;
    for (let q = 0; q < H; q++) s += w.weight_hh_l0[k * H + q] * v[off + q];
    return s;
  };
  let h = new Float64Array(B * H);
  if (inp.h0) h.set(Array.from(inp.h0));
  const y = new Float64Array(T * B * H);
  for (let t = 0; t < T; t++) {
    const next = new Float64Array(B * H);
    for (let b = 0; b < B; b++) {
      if (cell === 'rnn') {
        for (let j = 0; j < H; j++) {
          const a = xs(j, t, b) + bih(j) + hs(j, h, b * H) + bhh(j);
          tracker?.observeGate('rnn', a, clip, ga, `t=${t} b=${b} j=${j}`);
          next[b * H + j] = applyAct(ga, clamp(a, clip));
        }
        continue;
      }
      const r = new Float64Array(H);
      const z = new Float64Array(H);
      for (let j = 0; j < H; j++) {
        const at = `t=${t} b=${b} j=${j}`;
        const ar = xs(j, t, b) + bih(j) + hs(j, h, b * H) + bhh(j);
        const az = xs(H + j, t, b) + bih(H + j) + hs(H + j, h, b * H) + bhh(H + j);
        tracker?.observeGate('r', ar, clip, fa, at);
        tracker?.observeGate('z', az, clip, fa, at);
        r[j] = applyAct(fa, clamp(ar, clip));
        z[j] = applyAct(fa, clamp(az, clip));
      }
      const rh = new Float64Array(H);
      for (let q = 0; q < H; q++) rh[q] = r[q] * h[b * H + q];
      for (let j = 0; j < H; j++) {
        const k = 2 * H + j;
        const an = resetAfter
          ? xs(k, t, b) + bih(k) + r[j] * (hs(k, h, b * H) + bhh(k))
          : xs(k, t, b) + bih(k) + hs(k, rh, 0) + bhh(k);
        tracker?.observeGate('n', an, clip, ga, `t=${t} b=${b} j=${j}`);
        const n = applyAct(ga, clamp(an, clip));
        next[b * H + j] = (1 - z[j]) * n + z[j] * h[b * H + j];
      }
    }
    y.set(next, t * B * H);
    h = next;
  }
  return { y, hN: h };
}
