/**
 * Forward pass of a tfjs (pure-JS `cpu` backend, float32) LSTM or reset-before GRU layer, created with
 * tfjs's OWN defaults for everything not given here — in particular `recurrentActivation`, which
 * tfjs/Keras-JS default to 'hardSigmoid' (clip(0.2x + 0.5, 0, 1)) unlike PyTorch and rnnkit. Pass
 * `recurrentActivation` only to override that default.
 *
 * Complements ./tfjs-oracle.ts (which pins sigmoid gates and also computes gradients). Weights come in
 * PyTorch layout (weight_ih_l0 [G*H, I], weight_hh_l0 [G*H, H], biases [G*H]; LSTM i,f,g,o; GRU r,z,n)
 * and are converted by lib/io/layouts.ts to Keras layout (kernel [I, G*H], recurrent_kernel [H, G*H], one bias; GRU gate
 * order z,r,h). The two PyTorch biases only appear as a sum in these cells (the tfjs GRU is reset-before:
 * n = tanh(W_n x + b_n + R_n (r ⊙ h))), so the tfjs bias is bias_ih + bias_hh.
 * Sequences are batch-first [B, T, *] as in tfjs; with goBackwards the outputs come in reversed order.
 */
import * as tf from '@tensorflow/tfjs';

import { gateCount, torchToKeras } from '../../lib/io/layouts.js';

export type TfjsForwardCell = 'lstm' | 'gru';

export interface TfjsForwardInput {
  cell: TfjsForwardCell;
  B: number;
  T: number;
  I: number;
  H: number;
  /** Batch-first [B, T, I]. */
  x: Float32Array;
  /** [B, H]; omitted = tfjs's zero initial state. */
  h0?: Float32Array;
  /** [B, H], LSTM only, given together with h0. */
  c0?: Float32Array;
  weights: { weight_ih_l0: Float32Array; weight_hh_l0: Float32Array; bias_ih_l0: Float32Array; bias_hh_l0: Float32Array };
  goBackwards?: boolean;
  /** Omitted: tfjs's default ('hardSigmoid'). */
  recurrentActivation?: 'hardSigmoid' | 'sigmoid';
}

export interface TfjsForwardResult {
  /** [B, T, H] */
  y: Float32Array;
  hN: Float32Array;
  /** LSTM only. */
  cN?: Float32Array;
}

let ready: Promise<void> | undefined;
function cpuBackend(): Promise<void> {
  ready ??= tf.setBackend('cpu').then((ok) => {
    if (!ok || tf.getBackend() !== 'cpu') throw new Error('tfjsForward: could not activate the tfjs cpu backend');
  });
  return ready;
}

export async function tfjsForward(inp: TfjsForwardInput): Promise<TfjsForwardResult> {
  await cpuBackend();
  const { cell, B, T, I, H } = inp;
  const GH = gateCount(cell) * H;
  const { weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0 } = inp.weights;
  if (weight_ih_l0.length !== GH * I || weight_hh_l0.length !== GH * H || bias_ih_l0.length !== GH || bias_hh_l0.length !== GH) {
    throw new RangeError('tfjsForward: weight shapes do not match the cell');
  }
  if (inp.x.length !== B * T * I) throw new RangeError('tfjsForward: x shape');
  // layouts.ts: transposes, Keras gate order, bias_ih + bias_hh folded into the one tfjs bias.
  const keras = torchToKeras(cell, H, { weightIh: weight_ih_l0, weightHh: weight_hh_l0, biasIh: bias_ih_l0, biasHh: bias_hh_l0 });

  const owned: tf.Tensor[] = [];
  const own = <X extends tf.Tensor>(t: X): X => (owned.push(t), t);
  let layer: tf.layers.RNN | undefined;
  try {
    const config = {
      units: H,
      returnSequences: true,
      returnState: true,
      goBackwards: inp.goBackwards ?? false,
      weights: [
        own(tf.tensor2d(keras.kernel, [I, GH])),
        own(tf.tensor2d(keras.recurrentKernel, [H, GH])),
        own(tf.tensor1d(keras.bias!)),
      ],
      ...(inp.recurrentActivation ? { recurrentActivation: inp.recurrentActivation } : {}),
    };
    layer = cell === 'lstm' ? tf.layers.lstm(config) : tf.layers.gru(config);
    const rnn = layer;
    const x = own(tf.tensor3d(inp.x, [B, T, I]));
    let initialState: tf.Tensor[] | undefined;
    if (inp.h0) {
      initialState = [own(tf.tensor2d(inp.h0, [B, H]))];
      if (cell === 'lstm') {
        if (!inp.c0) throw new TypeError('tfjsForward: an LSTM initial state needs c0 with h0');
        initialState.push(own(tf.tensor2d(inp.c0, [B, H])));
      }
    }
    const out = rnn.apply(x, initialState ? { initialState } : undefined);
    if (!Array.isArray(out)) throw new Error('tfjsForward: expected [y, h(, c)] from the layer');
    for (const t of out) own(t as tf.Tensor);
    const data = async (t: unknown): Promise<Float32Array> => {
      const d = await (t as tf.Tensor).data();
      if (!(d instanceof Float32Array)) throw new Error('tfjsForward: expected float32 output');
      return d;
    };
    return { y: await data(out[0]), hN: await data(out[1]), ...(cell === 'lstm' ? { cN: await data(out[2]) } : {}) };
  } finally {
    if (layer?.built) layer.dispose();
    for (const t of owned) if (!t.isDisposed) t.dispose();
  }
}
