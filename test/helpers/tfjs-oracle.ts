/**
 * Reference results for single-layer, unidirectional SimpleRNN / LSTM / GRU computed with
 * @tensorflow/tfjs (pure-JS `cpu` backend, float32).
 *
 * The oracle speaks PyTorch: weights come in (and gradients go out) in PyTorch's layout
 * (`weight_ih_l0 [G*H, I]`, `weight_hh_l0 [G*H, H]`, `bias_ih_l0 [G*H]`, `bias_hh_l0 [G*H]`,
 * gate order LSTM i,f,g,o and GRU r,z,n), and all sequences are time-major `[T, B, *]`.
 * Internally everything is converted to the Keras/tfjs layout (`kernel [I, G*H]`,
 * `recurrent_kernel [H, G*H]`, a single `bias [G*H]`, batch-first sequences, GRU gate
 * order z,r,h).
 *
 * The scalar whose gradients are returned is
 *   L = sum(y * dy) + sum(hN * dhN) + sum(cN * dcN),
 * so every gradient is the vector-Jacobian product of the given upstream gradients.
 *
 * Semantics worth knowing:
 *  - tfjs only implements the "reset-before" GRU (Cho et al. 2014; `resetAfter: true` throws):
 *      n = tanh(W_n x + b_n + R_n (r ⊙ h_prev)).
 *    This is NOT PyTorch's nn.GRU, which is reset-after: n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)).
 *    In the reset-before form the two PyTorch biases only ever appear as a sum, so the tfjs
 *    bias is `bias_ih + bias_hh` and both bias gradients equal the tfjs bias gradient.
 *  - The same bias folding holds exactly for SimpleRNN and LSTM.
 *  - A missing `h0` / `c0` means "zeros, not differentiated": the corresponding gradient
 *    is absent from the result.
 */
import * as tf from '@tensorflow/tfjs';

import { gateCount as layoutGateCount, kerasToTorch, torchToKeras, type CellFamily } from '../../lib/io/layouts.js';

export type OracleCell = 'rnn_tanh' | 'rnn_relu' | 'lstm' | 'gru';

export interface OracleInput {
  cell: OracleCell;
  T: number;
  B: number;
  I: number;
  H: number;
  /** Time-major input sequence [T, B, I]. */
  x: Float32Array;
  /** Initial hidden state [B, H]; omitted = zeros and no gradient. */
  h0?: Float32Array;
  /** Initial cell state [B, H] (LSTM only); omitted = zeros and no gradient. */
  c0?: Float32Array;
  /**
   * PyTorch layout: weight_ih [G*H, I], weight_hh [G*H, H], biases [G*H];
   * gate order LSTM i,f,g,o (G=4), GRU r,z,n (G=3), RNN G=1.
   */
  weights: {
    weight_ih_l0: Float32Array;
    weight_hh_l0: Float32Array;
    bias_ih_l0: Float32Array;
    bias_hh_l0: Float32Array;
  };
  /** Upstream gradient for the output sequence, time-major [T, B, H]. */
  dy: Float32Array;
  /** Upstream gradient for the final hidden state [B, H]. */
  dhN: Float32Array;
  /** Upstream gradient for the final cell state [B, H] (LSTM only; omitted = zeros). */
  dcN?: Float32Array;
}

export interface OracleResult {
  /** Time-major output sequence [T, B, H]. */
  y: Float32Array;
  /** Final hidden state [B, H]. */
  hN: Float32Array;
  /** Final cell state [B, H] (LSTM only). */
  cN?: Float32Array;
  /** dL/d(everything), PyTorch layout, time-major. */
  grads: {
    x: Float32Array;
    h0?: Float32Array;
    c0?: Float32Array;
    weight_ih_l0: Float32Array;
    weight_hh_l0: Float32Array;
    bias_ih_l0: Float32Array;
    bias_hh_l0: Float32Array;
  };
}

/** Number of gate blocks G in the stacked weight matrices. */
export function gateCount(cell: OracleCell): number {
  return layoutGateCount(familyOf(cell));
}

/** The layouts.ts cell family of an oracle cell. */
export function familyOf(cell: OracleCell): CellFamily {
  return cell === 'lstm' ? 'lstm' : cell === 'gru' ? 'gru' : 'rnn';
}

/**
 * PyTorch-layout weights of one layer-direction → tfjs's [kernel, recurrent_kernel, bias] values
 * (lib/io/layouts.ts torchToKeras: transposes, gate order, bias_ih + bias_hh folded into one bias).
 */
export function kerasWeightsOf(
  cell: OracleCell,
  H: number,
  w: { weightIh: Float32Array; weightHh: Float32Array; biasIh: Float32Array; biasHh: Float32Array },
): { kernel: Float32Array; recurrentKernel: Float32Array; bias: Float32Array } {
  const k = torchToKeras(familyOf(cell), H, w);
  return { kernel: k.kernel, recurrentKernel: k.recurrentKernel, bias: k.bias! };
}

/**
 * Gradients of tfjs's kernel, recurrent_kernel and (folded) bias → PyTorch layout (layouts.ts
 * kerasToTorch). The one tfjs bias is bias_ih + bias_hh, so both PyTorch biases get its gradient.
 */
export function torchGradsOf(
  cell: OracleCell,
  H: number,
  g: { kernel: Float32Array; recurrentKernel: Float32Array; bias: Float32Array },
): { weightIh: Float32Array; weightHh: Float32Array; biasIh: Float32Array; biasHh: Float32Array } {
  const t = kerasToTorch(familyOf(cell), H, g);
  return { weightIh: t.weightIh, weightHh: t.weightHh, biasIh: t.biasIh!, biasHh: Float32Array.from(t.biasIh!) };
}

function checkLength(name: string, a: Float32Array | undefined, expected: number): void {
  if (a !== undefined && a.length !== expected) {
    throw new RangeError(`tfjsOracle: ${name} has length ${a.length}, expected ${expected}`);
  }
}

function validate(input: OracleInput): void {
  const { cell, T, B, I, H } = input;
  for (const [name, v] of [['T', T], ['B', B], ['I', I], ['H', H]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`tfjsOracle: ${name} must be a positive integer, got ${v}`);
  }
  const GH = gateCount(cell) * H;
  checkLength('x', input.x, T * B * I);
  checkLength('h0', input.h0, B * H);
  checkLength('c0', input.c0, B * H);
  checkLength('weight_ih_l0', input.weights.weight_ih_l0, GH * I);
  checkLength('weight_hh_l0', input.weights.weight_hh_l0, GH * H);
  checkLength('bias_ih_l0', input.weights.bias_ih_l0, GH);
  checkLength('bias_hh_l0', input.weights.bias_hh_l0, GH);
  checkLength('dy', input.dy, T * B * H);
  checkLength('dhN', input.dhN, B * H);
  checkLength('dcN', input.dcN, B * H);
  if (cell !== 'lstm' && (input.c0 !== undefined || input.dcN !== undefined)) {
    throw new TypeError(`tfjsOracle: c0/dcN are only meaningful for 'lstm', not '${cell}'`);
  }
}

function makeLayer(cell: OracleCell, H: number, initialWeights: tf.Tensor[]): tf.layers.RNN {
  const common = {
    units: H,
    returnSequences: true,
    returnState: true,
    useBias: true,
    // Cheap deterministic placeholders; the real values come from `weights` right after build.
    kernelInitializer: 'zeros',
    recurrentInitializer: 'zeros',
    biasInitializer: 'zeros',
    weights: initialWeights,
  } as const;
  switch (cell) {
    case 'rnn_tanh':
      return tf.layers.simpleRNN({ ...common, activation: 'tanh' });
    case 'rnn_relu':
      return tf.layers.simpleRNN({ ...common, activation: 'relu' });
    case 'lstm':
      return tf.layers.lstm({ ...common, activation: 'tanh', recurrentActivation: 'sigmoid', unitForgetBias: false });
    case 'gru':
      // Always the reset-before GRU: tfjs has no reset-after variant (not even in GRULayerArgs).
      return tf.layers.gru({ ...common, activation: 'tanh', recurrentActivation: 'sigmoid' });
  }
}

/**
 * The trainable tf.Variable behind a layer weight (kernel, recurrent_kernel or bias), looked up in a
 * layer's trainable weights or in a given list of them (e.g. one direction's half of a Bidirectional's).
 */
export function layerVariable(layer: tf.layers.Layer | tf.layers.Layer['trainableWeights'], suffix: string): tf.Variable {
  const weights = Array.isArray(layer) ? layer : layer.trainableWeights;
  const matches = weights.filter((w) => w.originalName.endsWith(`/${suffix}`));
  if (matches.length !== 1) {
    throw new Error(
      `tfjsOracle: expected one '${suffix}' weight, found [${weights.map((w) => w.originalName).join(', ')}]`,
    );
  }
  const v = matches[0].read();
  if (!(v instanceof tf.Variable)) throw new Error(`tfjsOracle: weight '${suffix}' is not backed by a tf.Variable`);
  return v;
}

/**
 * Works around a tfjs-core 4.x bug: the engine hands a single-output op's gradient function a
 * bare Tensor instead of a one-element array, and Unpack's gradient then calls
 * `stack(tensor)`, which throws ("Argument tensors passed to stack must be a `Tensor[]`").
 * tf.unstack over an axis of length 1 (the time loop of an RNN layer with T = 1) is therefore
 * not differentiable. The wrapper only normalises `dy` to an array, so it is a no-op wherever
 * the original worked.
 */
function patchUnpackGradient(): void {
  const original = tf.getGradient(tf.Unpack);
  tf.registerGradient({
    ...original,
    gradFunc: (dy, saved, attrs) => original.gradFunc(Array.isArray(dy) ? dy : [dy], saved, attrs),
  });
}

let backendReady: Promise<void> | undefined;

/** Selects the pure-JS cpu backend (and applies the gradient fix) once per process. */
export function ensureCpuBackend(): Promise<void> {
  backendReady ??= tf.setBackend('cpu').then((ok) => {
    if (!ok || tf.getBackend() !== 'cpu') throw new Error('tfjsOracle: could not activate the tfjs cpu backend');
    patchUnpackGradient();
  });
  return backendReady;
}

export async function download(t: tf.Tensor): Promise<Float32Array> {
  const data = await t.data();
  if (!(data instanceof Float32Array)) throw new Error(`tfjsOracle: expected float32 data, got ${t.dtype}`);
  return data;
}

/**
 * Runs the forward pass and the vector-Jacobian product of one recurrent layer with tfjs.
 * All tensors and variables created here are disposed before returning.
 */
export async function tfjsOracle(input: OracleInput): Promise<OracleResult> {
  validate(input);
  await ensureCpuBackend();

  const { cell, T, B, I, H } = input;
  const isLstm = cell === 'lstm';
  const GH = gateCount(cell) * H;
  const { weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0 } = input.weights;

  const keras = kerasWeightsOf(cell, H, { weightIh: weight_ih_l0, weightHh: weight_hh_l0, biasIh: bias_ih_l0, biasHh: bias_hh_l0 });

  // Every tensor allocated outside tf.tidy is registered here and disposed in `finally`.
  const owned: tf.Tensor[] = [];
  const own = <Tn extends tf.Tensor>(t: Tn): Tn => {
    owned.push(t);
    return t;
  };
  let layer: tf.layers.RNN | undefined;
  try {
    const initialWeights = [
      own(tf.tensor2d(keras.kernel, [I, GH])),
      own(tf.tensor2d(keras.recurrentKernel, [H, GH])),
      own(tf.tensor1d(keras.bias)),
    ];
    const rnn = makeLayer(cell, H, initialWeights);
    layer = rnn;

    // A layer creates its variables (and loads `weights` into them) on its first apply(), but
    // variableGrads needs them up front: build with a cheap throw-away call on a length-1 sequence.
    tf.tidy(() => {
      rnn.apply(tf.zeros([B, 1, I]));
    });
    const kernel = layerVariable(rnn, 'kernel');
    const recurrentKernel = layerVariable(rnn, 'recurrent_kernel');
    const bias = layerVariable(rnn, 'bias');

    // Differentiable inputs are variables too, so one tf.variableGrads call yields every gradient.
    // x stays time-major; the layout transposes happen inside the taped function.
    const xVar = own(tf.variable(own(tf.tensor3d(input.x, [T, B, I])), true));
    const h0Var = input.h0 && own(tf.variable(own(tf.tensor2d(input.h0, [B, H])), true));
    const c0Var = input.c0 && own(tf.variable(own(tf.tensor2d(input.c0, [B, H])), true));
    // Missing initial states are constant zeros (no gradient); tfjs LSTM state order is [h, c].
    const h0 = h0Var ?? own(tf.zeros([B, H]));
    const initialState = isLstm ? [h0, c0Var ?? own(tf.zeros([B, H]))] : [h0];
    const dy = own(tf.tensor3d(input.dy, [T, B, H]));
    const dhN = own(tf.tensor2d(input.dhN, [B, H]));
    const dcN = own(input.dcN ? tf.tensor2d(input.dcN, [B, H]) : tf.zeros([B, H]));

    // Forward results, captured from inside the taped function (tf.keep'd, disposed via `owned`).
    let forward: { y: tf.Tensor; hN: tf.Tensor; cN?: tf.Tensor } | undefined;
    const loss = (): tf.Scalar => {
      const out = rnn.apply(tf.transpose(xVar, [1, 0, 2]), { initialState });
      if (!Array.isArray(out) || !out.every((t): t is tf.Tensor => t instanceof tf.Tensor)) {
        throw new Error('tfjsOracle: layer.apply did not return an array of concrete tensors');
      }
      if (out.length !== initialState.length + 1) {
        throw new Error(`tfjsOracle: expected ${initialState.length + 1} outputs, got ${out.length}`);
      }
      const y = tf.transpose(out[0], [1, 0, 2]); // back to time-major [T, B, H]
      const hN = out[1];
      const cN: tf.Tensor | undefined = out[2];
      forward = { y: own(tf.keep(y)), hN: own(tf.keep(hN)), cN: cN && own(tf.keep(cN)) };
      let L = tf.add(tf.sum(tf.mul(y, dy)), tf.sum(tf.mul(hN, dhN)));
      if (cN) L = tf.add(L, tf.sum(tf.mul(cN, dcN)));
      return L as tf.Scalar;
    };

    const varList = [xVar, kernel, recurrentKernel, bias];
    if (h0Var) varList.push(h0Var);
    if (c0Var) varList.push(c0Var);
    const { value, grads } = tf.variableGrads(loss, varList);
    own(value);
    for (const g of Object.values(grads)) own(g);
    const grad = (v: tf.Variable): Promise<Float32Array> => {
      const g = grads[v.name];
      if (!g) throw new Error(`tfjsOracle: no gradient for variable '${v.name}'`);
      return download(g);
    };
    if (!forward) throw new Error('tfjsOracle: the forward pass did not run');

    const torchGrads = torchGradsOf(cell, H, { kernel: await grad(kernel), recurrentKernel: await grad(recurrentKernel), bias: await grad(bias) });
    return {
      y: await download(forward.y),
      hN: await download(forward.hN),
      ...(forward.cN && { cN: await download(forward.cN) }),
      grads: {
        x: await grad(xVar),
        ...(h0Var && { h0: await grad(h0Var) }),
        ...(c0Var && { c0: await grad(c0Var) }),
        weight_ih_l0: torchGrads.weightIh,
        weight_hh_l0: torchGrads.weightHh,
        bias_ih_l0: torchGrads.biasIh,
        bias_hh_l0: torchGrads.biasHh,
      },
    };
  } finally {
    if (layer?.built) layer.dispose();
    for (const t of owned) if (!t.isDisposed) t.dispose();
  }
}
