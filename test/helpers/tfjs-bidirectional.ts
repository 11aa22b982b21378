/**
 * Reference results for stacks of recurrent layers, each a plain tfjs layer or a tfjs
 * `tf.layers.bidirectional` around one, computed with @tensorflow/tfjs (pure-JS `cpu` backend,
 * float32): the top layer's output(s), every layer's final states, and the gradients of
 *
 *   L = Σ_k sum(output_k ⊙ dOutputs[k]) + Σ_layers Σ_s sum(state_s ⊙ dStates[layer][s])
 *
 * with respect to the input, every layer's initial states and every parameter.
 *
 * Layer l > 0 reads layer l−1's output sequence (lower layers always return sequences and, when
 * bidirectional, concatenate the two directions, fw features first, as PyTorch's bidirectional
 * stacks do); the top layer has the given returnSequences and mergeMode ('none' = tfjs's null
 * mergeMode, whose two outputs [forward, backward] are returned separately). Every layer is built
 * with returnState, so each layer's final states are available (tfjs order: [h(, c)] or
 * [h_fw(, c_fw), h_bw(, c_bw)]).
 *
 * Weights come in, and gradients go out, with PyTorch's names and layout (`weight_ih_l{k}` [G·H, in_k],
 * `weight_hh_l{k}` [G·H, H], `bias_ih_l{k}`, `bias_hh_l{k}` [G·H], `_reverse` appended for the backward
 * direction; gate order LSTM i,f,g,o and GRU r,z,n); the conversion to Keras's kernel / recurrent_kernel /
 * single bias (= bias_ih + bias_hh, also for the reset-before GRU, the only one tfjs has) is
 * lib/io/layouts.ts's (through ./tfjs-oracle.ts's kerasWeightsOf/torchGradsOf). Sequences are batch-first [B, T, *] as in tfjs.
 *
 * Initial states are always passed (zeros when not given) as variables, so their gradients are
 * always returned.
 */
import * as tf from '@tensorflow/tfjs';

import type { MergeMode } from '../../lib/index.js';
import {
  download,
  ensureCpuBackend,
  gateCount,
  kerasWeightsOf,
  layerVariable,
  torchGradsOf,
  type OracleCell,
} from './tfjs-oracle.js';

export interface TfjsStackInput {
  cell: OracleCell;
  /** Gate activation of LSTM/GRU, required for them since tfjs's default ('hardSigmoid') differs from PyTorch's. */
  recurrentActivation?: 'sigmoid' | 'hardSigmoid';
  B: number;
  T: number;
  I: number;
  H: number;
  numLayers: number;
  /** Every layer a tfjs Bidirectional. */
  bidirectional: boolean;
  /** The top layer's merge mode (bidirectional only; lower layers concatenate). Default 'concat'. */
  mergeMode?: MergeMode;
  /** The top layer's; lower layers always return sequences. */
  returnSequences: boolean;
  /** Batch-first [B, T, I]. */
  x: Float32Array;
  /** PyTorch names and layout (see above). */
  weights: Record<string, Float32Array>;
  /** Per layer, in tfjs order, each [B, H]; omitted (or a missing layer) = zeros. */
  initialStates?: Float32Array[][];
  /** Upstream gradients of the top layer's output(s): one, or [forward, backward] with mergeMode 'none'. */
  dOutputs: Float32Array[];
  /** Upstream gradients of each layer's final states, tfjs order; omitted = zeros. */
  dStates?: Float32Array[][];
}

export interface TfjsStackResult {
  /** The top layer's output(s), batch-first: [B, T, W] with returnSequences, else [B, W]. */
  outputs: Float32Array[];
  /** Each layer's final states, tfjs order, each [B, H]. */
  states: Float32Array[][];
  grads: {
    /** [B, T, I] */
    x: Float32Array;
    /** Per layer, tfjs order, each [B, H]. */
    initialStates: Float32Array[][];
    /** PyTorch names and layout. */
    params: Record<string, Float32Array>;
  };
}

/** PyTorch's suffix of layer l, direction d. */
export function paramSuffix(layer: number, dir: number): string {
  return `_l${layer}${dir === 1 ? '_reverse' : ''}`;
}

/** States per direction: 2 for LSTM (h, c), else 1. */
export function stateCountOf(cell: OracleCell): 1 | 2 {
  return cell === 'lstm' ? 2 : 1;
}

/** Width of one step of the top layer's (first) output. */
function outputWidth(inp: TfjsStackInput): number {
  if (!inp.bidirectional) return inp.H;
  const m = inp.mergeMode ?? 'concat';
  return m === 'concat' ? 2 * inp.H : inp.H;
}

function newRnn(inp: TfjsStackInput, returnSequences: boolean): tf.layers.RNN {
  const common = {
    units: inp.H,
    returnSequences,
    returnState: true,
    useBias: true,
    // Cheap placeholders; the real values are set right after the layer is built.
    kernelInitializer: 'zeros',
    recurrentInitializer: 'zeros',
    biasInitializer: 'zeros',
  } as const;
  if (inp.cell === 'rnn_tanh' || inp.cell === 'rnn_relu') {
    if (inp.recurrentActivation !== undefined) throw new TypeError('tfjsStack: recurrentActivation is for LSTM/GRU only');
    return tf.layers.simpleRNN({ ...common, activation: inp.cell === 'rnn_tanh' ? 'tanh' : 'relu' });
  }
  const recurrentActivation = inp.recurrentActivation;
  if (recurrentActivation === undefined) throw new TypeError(`tfjsStack: give recurrentActivation for '${inp.cell}' (tfjs's default is hardSigmoid)`);
  if (inp.cell === 'lstm') return tf.layers.lstm({ ...common, activation: 'tanh', recurrentActivation, unitForgetBias: false });
  return tf.layers.gru({ ...common, activation: 'tanh', recurrentActivation }); // reset-before: tfjs has no other
}

function validate(inp: TfjsStackInput): void {
  const { B, T, I, H, numLayers: L } = inp;
  for (const [name, v] of [['B', B], ['T', T], ['I', I], ['H', H], ['numLayers', L]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`tfjsStack: ${name} must be a positive integer, got ${v}`);
  }
  if (!inp.bidirectional && inp.mergeMode !== undefined) throw new TypeError('tfjsStack: mergeMode needs bidirectional');
  const D = inp.bidirectional ? 2 : 1, S = stateCountOf(inp.cell), GH = gateCount(inp.cell) * H;
  const len = (name: string, a: Float32Array | undefined, n: number): void => {
    if (a === undefined) throw new RangeError(`tfjsStack: ${name} is missing`);
    if (a.length !== n) throw new RangeError(`tfjsStack: ${name} has length ${a.length}, expected ${n}`);
  };
  len('x', inp.x, B * T * I);
  const expected = new Set<string>();
  for (let l = 0; l < L; l++) {
    const inSize = l === 0 ? I : D * H;
    for (let d = 0; d < D; d++) {
      const sfx = paramSuffix(l, d);
      for (const [k, n] of [['weight_ih', GH * inSize], ['weight_hh', GH * H], ['bias_ih', GH], ['bias_hh', GH]] as const) {
        len(k + sfx, inp.weights[k + sfx], n);
        expected.add(k + sfx);
      }
    }
    inp.initialStates?.[l]?.forEach((s, k) => len(`initialStates[${l}][${k}]`, s, B * H));
    inp.dStates?.[l]?.forEach((s, k) => len(`dStates[${l}][${k}]`, s, B * H));
    if ((inp.initialStates?.[l]?.length ?? D * S) !== D * S) throw new RangeError(`tfjsStack: initialStates[${l}] needs ${D * S} states`);
    if ((inp.dStates?.[l]?.length ?? D * S) !== D * S) throw new RangeError(`tfjsStack: dStates[${l}] needs ${D * S} states`);
  }
  const extra = Object.keys(inp.weights).filter((k) => !expected.has(k));
  if (extra.length > 0) throw new RangeError(`tfjsStack: unexpected weights [${extra.join(', ')}]`);
  const nOut = inp.bidirectional && inp.mergeMode === 'none' ? 2 : 1;
  const W = nOut === 2 ? H : outputWidth(inp);
  if (inp.dOutputs.length !== nOut) throw new RangeError(`tfjsStack: dOutputs needs ${nOut} arrays, got ${inp.dOutputs.length}`);
  inp.dOutputs.forEach((g, k) => len(`dOutputs[${k}]`, g, (inp.returnSequences ? B * T : B) * W));
}

/** Runs the stack forward and backward in tfjs; everything created here is disposed before returning. */
export async function tfjsStack(inp: TfjsStackInput): Promise<TfjsStackResult> {
  validate(inp);
  await ensureCpuBackend();
  const { cell, B, T, I, H, numLayers: L, bidirectional } = inp;
  const D = bidirectional ? 2 : 1;
  const S = stateCountOf(cell);
  const GH = gateCount(cell) * H;
  const merge = inp.mergeMode ?? 'concat';
  const nOut = bidirectional && merge === 'none' ? 2 : 1;

  const owned: tf.Tensor[] = [];
  const own = <X extends tf.Tensor>(t: X): X => (owned.push(t), t);
  const layers: tf.layers.Layer[] = [];
  try {
    /** Where each tfjs variable's gradient goes: PyTorch name(s) and layout. */
    const params: { v: tf.Variable; sfx: string; kind: 'kernel' | 'recurrent_kernel' | 'bias' }[] = [];
    for (let l = 0; l < L; l++) {
      const top = l === L - 1;
      const inSize = l === 0 ? I : D * H;
      const rnn = newRnn(inp, top ? inp.returnSequences : true);
      const layer = bidirectional
        ? tf.layers.bidirectional({
            layer: rnn,
            // tfjs spells "return both" as a null merge mode (not in its TypeScript type).
            mergeMode: top ? (merge === 'none' ? (null as never) : merge) : 'concat',
          })
        : rnn;
      layers.push(layer);
      // Variables are created (and can be set) on the first apply: build with a throw-away length-1 call.
      tf.tidy(() => {
        layer.apply(tf.zeros([B, 1, inSize]));
      });
      const values: tf.Tensor[] = [];
      for (let d = 0; d < D; d++) {
        const sfx = paramSuffix(l, d);
        const w = (k: string): Float32Array => inp.weights[k + sfx];
        const k = kerasWeightsOf(cell, H, { weightIh: w('weight_ih'), weightHh: w('weight_hh'), biasIh: w('bias_ih'), biasHh: w('bias_hh') });
        values.push(
          own(tf.tensor2d(k.kernel, [inSize, GH])),
          own(tf.tensor2d(k.recurrentKernel, [H, GH])),
          own(tf.tensor1d(k.bias)),
        );
      }
      layer.setWeights(values); // a Bidirectional gives the first half to its forward layer
      // A Bidirectional's trainable weights are its forward layer's, then its backward layer's.
      const all = layer.trainableWeights;
      if (all.length !== 3 * D) throw new Error(`tfjsStack: layer ${l} has ${all.length} trainable weights, expected ${3 * D}`);
      for (let d = 0; d < D; d++) {
        const mine = all.slice(3 * d, 3 * d + 3);
        const tag = d === 0 ? 'forward_' : 'backward_';
        if (bidirectional && !mine.every((v) => v.originalName.includes(tag))) {
          throw new Error(`tfjsStack: layer ${l} direction ${d}: expected '${tag}' weights, got [${mine.map((v) => v.originalName).join(', ')}]`);
        }
        const sfx = paramSuffix(l, d);
        params.push(
          { v: layerVariable(mine, 'kernel'), sfx, kind: 'kernel' },
          { v: layerVariable(mine, 'recurrent_kernel'), sfx, kind: 'recurrent_kernel' },
          { v: layerVariable(mine, 'bias'), sfx, kind: 'bias' },
        );
      }
    }

    const xVar = own(tf.variable(own(tf.tensor3d(inp.x, [B, T, I])), true));
    const initVars: tf.Variable[][] = [];
    const dStates: tf.Tensor[][] = [];
    for (let l = 0; l < L; l++) {
      const given = inp.initialStates?.[l];
      const up = inp.dStates?.[l];
      initVars.push(Array.from({ length: D * S }, (_, k) => own(tf.variable(own(given ? tf.tensor2d(given[k], [B, H]) : tf.zeros([B, H])), true))));
      dStates.push(Array.from({ length: D * S }, (_, k) => own(up ? tf.tensor2d(up[k], [B, H]) : tf.zeros([B, H]))));
    }
    const W = nOut === 2 ? H : outputWidth(inp);
    const dOutputs = inp.dOutputs.map((g) => own(inp.returnSequences ? tf.tensor3d(g, [B, T, W]) : tf.tensor2d(g, [B, W])));

    let forward: { outputs: tf.Tensor[]; states: tf.Tensor[][] } | undefined;
    const loss = (): tf.Scalar => {
      let h: tf.Tensor = xVar;
      let outputs: tf.Tensor[] = [];
      const states: tf.Tensor[][] = [];
      layers.forEach((layer, l) => {
        const out = layer.apply(h, { initialState: initVars[l] });
        if (!Array.isArray(out) || !out.every((t): t is tf.Tensor => t instanceof tf.Tensor)) {
          throw new Error(`tfjsStack: layer ${l}: apply did not return an array of concrete tensors`);
        }
        const n = l === L - 1 ? nOut : 1;
        if (out.length !== n + D * S) throw new Error(`tfjsStack: layer ${l}: expected ${n + D * S} outputs, got ${out.length}`);
        outputs = out.slice(0, n);
        states.push(out.slice(n));
        h = outputs[0];
      });
      forward = { outputs: outputs.map((t) => own(tf.keep(t))), states: states.map((s) => s.map((t) => own(tf.keep(t)))) };
      let total: tf.Tensor = tf.scalar(0);
      outputs.forEach((y, k) => (total = tf.add(total, tf.sum(tf.mul(y, dOutputs[k])))));
      states.forEach((s, l) => s.forEach((t, k) => (total = tf.add(total, tf.sum(tf.mul(t, dStates[l][k]))))));
      return total as tf.Scalar;
    };

    const { value, grads } = tf.variableGrads(loss, [xVar, ...params.map((p) => p.v), ...initVars.flat()]);
    own(value);
    for (const g of Object.values(grads)) own(g);
    const grad = (v: tf.Variable): Promise<Float32Array> => {
      const g = grads[v.name];
      if (!g) throw new Error(`tfjsStack: no gradient for variable '${v.name}'`);
      return download(g);
    };
    if (!forward) throw new Error('tfjsStack: the forward pass did not run');
    const fwd = forward;

    // Each layer-direction's three gradients back to PyTorch layout at once (layouts.ts kerasToTorch;
    // the single tfjs bias is bias_ih + bias_hh, so both get its gradient).
    const paramGrads: Record<string, Float32Array> = {};
    const bySuffix = new Map<string, Partial<Record<'kernel' | 'recurrent_kernel' | 'bias', Float32Array>>>();
    for (const p of params) {
      const entry = bySuffix.get(p.sfx) ?? {};
      entry[p.kind] = await grad(p.v);
      bySuffix.set(p.sfx, entry);
    }
    for (const [sfx, g] of bySuffix) {
      const t = torchGradsOf(cell, H, { kernel: g.kernel!, recurrentKernel: g.recurrent_kernel!, bias: g.bias! });
      paramGrads[`weight_ih${sfx}`] = t.weightIh;
      paramGrads[`weight_hh${sfx}`] = t.weightHh;
      paramGrads[`bias_ih${sfx}`] = t.biasIh;
      paramGrads[`bias_hh${sfx}`] = t.biasHh;
    }
    return {
      outputs: await Promise.all(fwd.outputs.map(download)),
      states: await Promise.all(fwd.states.map((s) => Promise.all(s.map(download)))),
      grads: {
        x: await grad(xVar),
        initialStates: await Promise.all(initVars.map((s) => Promise.all(s.map(grad)))),
        params: paramGrads,
      },
    };
  } finally {
    for (const layer of layers) if (layer.built) layer.dispose();
    for (const t of owned) if (!t.isDisposed) t.dispose();
  }
}
