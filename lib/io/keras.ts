// Keras model descriptions ↔ rnnkit Sequential models: the layer configurations of a tfjs
// `modelTopology`, a Keras 2 `model_config` or a Keras 3 `config.json`, and each layer's weights in
// Keras's get_weights() order. Every recurrent weight goes through lib/io/layouts.ts
// (kerasToTorch/torchToKeras); Dense kernels [in, units] are transposed there too. The file formats
// (tfjs model.json + shards, .keras, .h5) are read and written by their own modules on top of this one.
//
// Flavours and their defaults for absent keys:
//   tfjs    recurrent_activation 'hard_sigmoid' (clip(0.2x + 0.5, 0, 1)), GRU reset_after false (the
//           only GRU tfjs has: tf.loadLayersModel refuses reset_after true)
//   keras2  recurrent_activation 'sigmoid', GRU reset_after true; hard_sigmoid = clip(0.2x + 0.5, 0, 1)
//   keras3  as keras2, but hard_sigmoid = relu6(x + 3)/6 = clip(x/6 + 0.5, 0, 1) (keras/src/activations)
// Weights are always given, so Keras's unit_forget_bias (an initializer) never matters.
import { GRU, LSTM, Recurrent, SimpleRNN, type GRUOptions, type LSTMOptions, type SimpleRNNOptions } from '../layers/recurrent.js';
import { Bidirectional, DropoutWrapper } from '../layers/wrappers.js';
import { RecurrentBase, type MergeMode } from '../layers/base.js';
import { Dense } from '../layers/dense.js';
import { Activation, Dropout, Embedding, Masking, RepeatVector, TimeDistributed } from '../layers/shaping.js';
import type { ElementwiseActivation } from '../layers/elementwise.js';
import { Sequential, type ModelLayer } from '../model/sequential.js';
import { Tensor } from '../tensor.js';
import type { ActivationSpec, NativeActivation } from '../activations.js';
import { show } from '../options.js';
import {
  UnsupportedFeatureError, assertExpressible, gateCount, kerasActivation, kerasToTorch, torchToKeras, transpose,
  type CellFamily, type RecurrentFeatures,
} from './layouts.js';

/** One weight of a Keras layer: its name (informative), shape and float32 values (row-major). */
export interface KerasWeight { name: string; shape: number[]; data: Float32Array }
/** Which Keras wrote (or will read) the description; picks the defaults and the hard_sigmoid. */
export type KerasFlavour = 'tfjs' | 'keras2' | 'keras3';

/** A malformed or unsupported Keras model description (names where, the layer and what was expected). */
export class KerasFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KerasFormatError';
  }
}

const FLAVOURS: readonly KerasFlavour[] = ['tfjs', 'keras2', 'keras3'];

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const snake = (k: string): string => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** A config with its keys in snake_case (tfjs's TypeScript spelling is camelCase). */
function snakeKeys(o: Obj): Obj {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [snake(k), v]));
}

// ---------------------------------------------------------------------------------------------
// Reading

/** Keys every layer config may have that do not change what the layer computes at inference. */
const COMMON_HARMLESS = ['name', 'trainable', 'dtype', 'batch_input_shape', 'batch_shape', 'input_shape', 'batch_size', 'input_dtype', 'autocast'];
const RECURRENT_HARMLESS = [
  ...COMMON_HARMLESS, 'kernel_initializer', 'recurrent_initializer', 'bias_initializer', 'kernel_regularizer', 'recurrent_regularizer',
  'bias_regularizer', 'activity_regularizer', 'kernel_constraint', 'recurrent_constraint', 'bias_constraint', 'implementation', 'unroll',
  'unit_forget_bias', 'seed', 'use_cudnn', 'input_dim', 'input_length', 'zero_output_for_mask',
];
const RECURRENT_KEYS = ['units', 'activation', 'recurrent_activation', 'use_bias', 'return_sequences', 'return_state', 'go_backwards', 'stateful', 'dropout', 'recurrent_dropout', 'time_major', 'reset_after'];

interface Ctx { flavour: KerasFlavour; where: string }

function fail(ctx: Ctx, layer: string, msg: string): never {
  throw new KerasFormatError(`${ctx.where}: layer ${layer}: ${msg}`);
}

/** Checks that every key of `cfg` is known; returns nothing, throws naming the unknown ones. */
function checkKeys(ctx: Ctx, layer: string, cls: string, cfg: Obj, known: readonly string[]): void {
  const unknown = Object.keys(cfg).filter((k) => !known.includes(k));
  if (unknown.length > 0) fail(ctx, layer, `${cls} option(s) ${unknown.map((k) => `'${k}'`).join(', ')} are not supported (they may change what the layer computes)`);
}

function bool(ctx: Ctx, layer: string, cfg: Obj, key: string, fallback: boolean): boolean {
  const v = cfg[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'boolean') fail(ctx, layer, `'${key}' must be a boolean, got ${show(v)}`);
  return v;
}

function posInt(ctx: Ctx, layer: string, cfg: Obj, key: string): number {
  const v = cfg[key];
  if (!Number.isSafeInteger(v) || (v as number) < 1) fail(ctx, layer, `'${key}' must be a positive integer, got ${show(v)}`);
  return v as number;
}

function rate(ctx: Ctx, layer: string, cfg: Obj, key: string): number {
  const v = cfg[key];
  if (v === undefined || v === null) return 0;
  if (typeof v !== 'number' || !(v >= 0 && v < 1)) fail(ctx, layer, `'${key}' must be a fraction in [0, 1), got ${show(v)}`);
  return v;
}

/** The activation's name: a string, or Keras 3's serialized function {class_name: 'function', config: 'tanh'}. */
function activationName(ctx: Ctx, layer: string, key: string, v: unknown): string {
  if (typeof v === 'string') return v;
  if (isObj(v) && typeof v.config === 'string') return v.config;
  if (isObj(v) && typeof v.class_name === 'string' && (v.config === undefined || (isObj(v.config) && Object.keys(v.config).length === 0))) return v.class_name;
  return fail(ctx, layer, `'${key}' must be an activation name, got ${show(v)}`);
}

/** A recurrent activation (Keras name) → rnnkit's, with the flavour's hard_sigmoid. */
function cellActivation(ctx: Ctx, layer: string, key: string, v: unknown, fallback: string): ActivationSpec {
  const name = v === undefined || v === null ? fallback : activationName(ctx, layer, key, v);
  switch (name) {
    case 'sigmoid': case 'tanh': case 'relu': case 'linear': case 'elu': case 'softsign': case 'softplus':
      return name;
    case 'hard_sigmoid': case 'hardSigmoid': case 'HardSigmoid':
      return ctx.flavour === 'keras3' ? { name: 'hardSigmoid', alpha: 1 / 6, beta: 0.5 } : 'hardSigmoid';
    default:
      return fail(ctx, layer, `'${key}': activation ${show(name)} is not supported for a recurrent layer (sigmoid, hard_sigmoid, tanh, relu, linear, elu, softsign, softplus)`);
  }
}

const DENSE_ACTIVATIONS: readonly ElementwiseActivation[] = ['linear', 'sigmoid', 'tanh', 'relu', 'softmax'];
function denseActivation(ctx: Ctx, layer: string, key: string, v: unknown): ElementwiseActivation {
  const name = v === undefined || v === null ? 'linear' : activationName(ctx, layer, key, v);
  if (!(DENSE_ACTIVATIONS as readonly string[]).includes(name)) {
    fail(ctx, layer, `'${key}': activation ${show(name)} is not supported (${DENSE_ACTIVATIONS.join(', ')})`);
  }
  return name as ElementwiseActivation;
}

/** A layer entry {class_name, config} in snake_case, or an error. */
function entry(ctx: Ctx, v: unknown, what: string): { cls: string; cfg: Obj; name: string } {
  if (!isObj(v)) throw new KerasFormatError(`${ctx.where}: ${what}: expected a layer {class_name, config}, got ${show(v)}`);
  const o = snakeKeys(v);
  if (typeof o.class_name !== 'string') throw new KerasFormatError(`${ctx.where}: ${what}: 'class_name' must be a string, got ${show(o.class_name)}`);
  if (!isObj(o.config)) throw new KerasFormatError(`${ctx.where}: ${what} (${o.class_name}): 'config' must be an object, got ${show(o.config)}`);
  const cfg = snakeKeys(o.config);
  const name = typeof cfg.name === 'string' ? cfg.name : what;
  return { cls: o.class_name, cfg, name };
}

/** How one Keras layer becomes rnnkit layers and how its weights are loaded into them. */
interface Plan {
  layers: ModelLayer[];
  /** Keras weights of the layer (count as get_weights() returns). */
  weightCount: number;
  load?: (w: KerasWeight[]) => void;
}

function family(cls: string): CellFamily {
  return cls === 'LSTM' ? 'lstm' : cls === 'GRU' ? 'gru' : 'rnn';
}

/** A recurrent layer (SimpleRNN/LSTM/GRU) from its Keras config; `goBackwards` overrides the config's. */
function recurrentFrom(ctx: Ctx, layer: string, cls: string, cfg: Obj, goBackwards?: boolean): Recurrent {
  checkKeys(ctx, layer, cls, cfg, [...RECURRENT_HARMLESS, ...RECURRENT_KEYS]);
  if (bool(ctx, layer, cfg, 'return_state', false)) fail(ctx, layer, "'return_state': true gives several outputs, which a Sequential cannot have");
  if (bool(ctx, layer, cfg, 'time_major', false)) fail(ctx, layer, "'time_major': true is not supported (batch-major [batch, steps, features] only)");
  if (cls !== 'GRU' && cfg.reset_after !== undefined) fail(ctx, layer, `'reset_after' is a GRU option, not ${cls}'s`);
  const common = {
    units: posInt(ctx, layer, cfg, 'units'),
    returnSequences: bool(ctx, layer, cfg, 'return_sequences', false),
    goBackwards: goBackwards ?? bool(ctx, layer, cfg, 'go_backwards', false),
    useBias: bool(ctx, layer, cfg, 'use_bias', true),
    stateful: bool(ctx, layer, cfg, 'stateful', false),
    dropout: rate(ctx, layer, cfg, 'dropout'),
    recurrentDropout: rate(ctx, layer, cfg, 'recurrent_dropout'),
  };
  const gateDefault = ctx.flavour === 'tfjs' ? 'hard_sigmoid' : 'sigmoid';
  const wrap = (f: () => Recurrent): Recurrent => {
    try {
      return f();
    } catch (e) {
      throw new KerasFormatError(`${ctx.where}: layer ${layer} (${cls}): ${(e as Error).message}`);
    }
  };
  if (cls === 'SimpleRNN') {
    return wrap(() => new SimpleRNN({ ...common, activation: cellActivation(ctx, layer, 'activation', cfg.activation, 'tanh') } satisfies SimpleRNNOptions));
  }
  const activation = cellActivation(ctx, layer, 'activation', cfg.activation, 'tanh');
  const recurrentActivation = cellActivation(ctx, layer, 'recurrent_activation', cfg.recurrent_activation, gateDefault);
  if (cls === 'LSTM') return wrap(() => new LSTM({ ...common, activation, recurrentActivation, unitForgetBias: false } satisfies LSTMOptions));
  const resetAfter = bool(ctx, layer, cfg, 'reset_after', ctx.flavour !== 'tfjs');
  return wrap(() => new GRU({ ...common, activation, recurrentActivation, resetAfter } satisfies GRUOptions));
}

function checkShape(ctx: Ctx, layer: string, w: KerasWeight, want: number[], what: string): void {
  const ok = Array.isArray(w.shape) && w.shape.length === want.length && w.shape.every((d, i) => d === want[i]);
  if (!ok) fail(ctx, layer, `weight ${w.name} (${what}): expected shape [${want.join(', ')}], got [${Array.isArray(w.shape) ? w.shape.join(', ') : show(w.shape)}]`);
  const n = want.reduce((a, b) => a * b, 1);
  if (!(w.data instanceof Float32Array) || w.data.length !== n) fail(ctx, layer, `weight ${w.name} (${what}): expected ${n} float32 values, got ${w.data instanceof Float32Array ? w.data.length : show(w.data)}`);
}

/** Loads one direction's Keras weights (kernel, recurrent_kernel[, bias]) into a single-layer recurrent layer. */
function loadRecurrent(ctx: Ctx, layer: string, r: Recurrent, w: KerasWeight[]): void {
  const suffix = '';
  const f = r.features();
  const H = r.units, G = gateCount(f.family), I = r.inputSize;
  const resetAfter = f.family === 'gru' && f.linearBeforeReset;
  checkShape(ctx, layer, w[0], [I, G * H], 'kernel');
  checkShape(ctx, layer, w[1], [H, G * H], 'recurrent_kernel');
  if (r.useBias) checkShape(ctx, layer, w[2], resetAfter ? [2, G * H] : [G * H], 'bias');
  const t = kerasToTorch(f.family, H, { kernel: w[0].data, recurrentKernel: w[1].data, ...(r.useBias ? { bias: w[2].data } : {}) }, { resetAfter });
  const d: Record<string, Tensor> = {
    [`weight_ih_l0${suffix}`]: Tensor.from(t.weightIh, [G * H, I]),
    [`weight_hh_l0${suffix}`]: Tensor.from(t.weightHh, [G * H, H]),
  };
  if (r.useBias) {
    d[`bias_ih_l0${suffix}`] = Tensor.from(t.biasIh!, [G * H]);
    d[`bias_hh_l0${suffix}`] = Tensor.from(t.biasHh!, [G * H]);
  }
  r.loadStateDict(d);
}

function denseFrom(ctx: Ctx, layer: string, cfg: Obj): Dense {
  checkKeys(ctx, layer, 'Dense', cfg, [...COMMON_HARMLESS, 'units', 'activation', 'use_bias', 'kernel_initializer', 'bias_initializer', 'kernel_regularizer',
    'bias_regularizer', 'activity_regularizer', 'kernel_constraint', 'bias_constraint', 'input_dim', 'lora_rank', 'lora_alpha', 'quantization_config']);
  if (cfg.lora_rank !== undefined && cfg.lora_rank !== null) fail(ctx, layer, "'lora_rank' (a LoRA-adapted Dense) is not supported");
  if (cfg.quantization_config !== undefined && cfg.quantization_config !== null) fail(ctx, layer, "'quantization_config' (a quantized Dense) is not supported");
  return new Dense({ units: posInt(ctx, layer, cfg, 'units'), activation: denseActivation(ctx, layer, 'activation', cfg.activation), useBias: bool(ctx, layer, cfg, 'use_bias', true) });
}

function loadDense(ctx: Ctx, layer: string, d: Dense, w: KerasWeight[]): void {
  checkShape(ctx, layer, w[0], [d.inputSize, d.units], 'kernel');
  const dict: Record<string, Tensor> = { weight: Tensor.from(transpose(w[0].data, d.inputSize, d.units), [d.units, d.inputSize]) };
  if (d.useBias) {
    checkShape(ctx, layer, w[1], [d.units], 'bias');
    dict.bias = Tensor.from(w[1].data, [d.units]);
  }
  d.loadStateDict(dict);
}

const WEIGHTED = new Set(['SimpleRNN', 'LSTM', 'GRU', 'Bidirectional', 'Dense', 'TimeDistributed', 'Embedding']);

/** The sizes a config declares (units, input_dim, output_dim) against the weights' shapes and real lengths. */
function precheck(ctx: Ctx, layer: string, cls: string, cfg: Obj, w: KerasWeight[]): void {
  const need = (k: number, what: string): KerasWeight => {
    const x = w[k];
    if (!isObj(x) || !Array.isArray(x.shape) || !x.shape.every((d) => Number.isSafeInteger(d) && d >= 0) || !(x.data instanceof Float32Array)) {
      return fail(ctx, layer, `weight ${k} (${what}): expected {name, shape, data: Float32Array}, got ${isObj(x) ? `{ name: ${show(x.name)}, shape: ${show(x.shape)} }` : show(x)}`);
    }
    const n = x.shape.reduce((a, b) => a * b, 1);
    if (x.data.length !== n) fail(ctx, layer, `weight ${x.name} (${what}): shape [${x.shape.join(', ')}] needs ${n} values, has ${x.data.length}`);
    return x;
  };
  const dim = (x: KerasWeight, axis: number, want: number, what: string): void => {
    if (x.shape.length !== 2 || x.shape[axis] !== want) fail(ctx, layer, `weight ${x.name} (${what}): expected shape [${axis === 0 ? `${want}, …` : `…, ${want}`}], got [${x.shape.join(', ')}]`);
  };
  const recurrent = (c: string, rc: Obj, k: number): void => {
    const H = posInt(ctx, layer, rc, 'units');
    const G = gateCount(family(c));
    need(k, 'kernel');
    const r = need(k + 1, 'recurrent_kernel');
    dim(r, 0, H, 'recurrent_kernel');
    dim(r, 1, G * H, 'recurrent_kernel');
  };
  const inner = (): { cls: string; cfg: Obj } => entry(ctx, cfg.layer, `${layer}.layer`);
  switch (cls) {
    case 'SimpleRNN': case 'LSTM': case 'GRU':
      return recurrent(cls, cfg, 0);
    case 'Bidirectional': {
      const f = inner();
      if (!['SimpleRNN', 'LSTM', 'GRU'].includes(f.cls)) return;
      recurrent(f.cls, f.cfg, 0);
      const n = bool(ctx, layer, f.cfg, 'use_bias', true) ? 3 : 2;
      const b = isObj(cfg.backward_layer) ? entry(ctx, cfg.backward_layer, `${layer}.backward_layer`) : f;
      return recurrent(b.cls, b.cfg, n);
    }
    case 'Dense':
      return dim(need(0, 'kernel'), 1, posInt(ctx, layer, cfg, 'units'), 'kernel');
    case 'TimeDistributed': {
      const d = inner();
      if (d.cls === 'Dense') dim(need(0, 'kernel'), 1, posInt(ctx, layer, d.cfg, 'units'), 'kernel');
      return;
    }
    case 'Embedding': {
      const e = need(0, 'embeddings');
      dim(e, 0, posInt(ctx, layer, cfg, 'input_dim'), 'embeddings');
      dim(e, 1, posInt(ctx, layer, cfg, 'output_dim'), 'embeddings');
      return;
    }
  }
}

function planLayer(ctx: Ctx, cls: string, cfg: Obj, layer: string): Plan {
  switch (cls) {
    case 'SimpleRNN': case 'LSTM': case 'GRU': {
      const r = recurrentFrom(ctx, layer, cls, cfg);
      const n = r.useBias ? 3 : 2;
      return { layers: [r], weightCount: n, load: (w) => loadRecurrent(ctx, layer, r, w) };
    }
    case 'Bidirectional': {
      checkKeys(ctx, layer, cls, cfg, [...COMMON_HARMLESS, 'layer', 'merge_mode', 'backward_layer']);
      const mm = cfg.merge_mode === undefined ? 'concat' : cfg.merge_mode;
      if (mm === null) fail(ctx, layer, "Bidirectional merge_mode null returns the two directions as two outputs, which a Sequential cannot have");
      if (!['concat', 'sum', 'mul', 'ave'].includes(mm as string)) fail(ctx, layer, `Bidirectional merge_mode ${show(mm)} is not supported (concat, sum, mul, ave)`);
      const inner = entry(ctx, cfg.layer, `${layer}.layer`);
      if (!['SimpleRNN', 'LSTM', 'GRU'].includes(inner.cls)) fail(ctx, layer, `Bidirectional around a ${inner.cls} is not supported (SimpleRNN, LSTM, GRU)`);
      if (bool(ctx, layer, inner.cfg, 'go_backwards', false)) fail(ctx, layer, 'Bidirectional around a layer with go_backwards: true is not supported');
      const fw = recurrentFrom(ctx, `${layer}/${inner.name}`, inner.cls, inner.cfg);
      let bwEntry = inner;
      if (cfg.backward_layer !== undefined && cfg.backward_layer !== null) {
        bwEntry = entry(ctx, cfg.backward_layer, `${layer}.backward_layer`);
        if (bwEntry.cls !== inner.cls) fail(ctx, layer, `Bidirectional backward_layer is a ${bwEntry.cls}, the forward layer a ${inner.cls}`);
      }
      const bw = recurrentFrom(ctx, `${layer}/${bwEntry.name}`, bwEntry.cls, bwEntry.cfg, true);
      let bi: Bidirectional;
      try {
        bi = new Bidirectional(fw, { mergeMode: mm as MergeMode, backwardLayer: bw });
      } catch (e) {
        fail(ctx, layer, (e as Error).message);
      }
      const n = fw.useBias ? 3 : 2, nb = bw.useBias ? 3 : 2;
      return {
        layers: [bi], weightCount: n + nb,
        load: (w) => {
          loadRecurrent(ctx, layer, fw, w.slice(0, n));
          loadRecurrent(ctx, layer, bw, w.slice(n));
        },
      };
    }
    case 'Dense': {
      const d = denseFrom(ctx, layer, cfg);
      return { layers: [d], weightCount: d.useBias ? 2 : 1, load: (w) => loadDense(ctx, layer, d, w) };
    }
    case 'TimeDistributed': {
      checkKeys(ctx, layer, cls, cfg, [...COMMON_HARMLESS, 'layer']);
      const inner = entry(ctx, cfg.layer, `${layer}.layer`);
      if (inner.cls !== 'Dense') fail(ctx, layer, `TimeDistributed around a ${inner.cls} is not supported (Dense only)`);
      const d = denseFrom(ctx, `${layer}/${inner.name}`, inner.cfg);
      return { layers: [new TimeDistributed(d)], weightCount: d.useBias ? 2 : 1, load: (w) => loadDense(ctx, layer, d, w) };
    }
    case 'Embedding': {
      checkKeys(ctx, layer, cls, cfg, [...COMMON_HARMLESS, 'input_dim', 'output_dim', 'mask_zero', 'input_length', 'embeddings_initializer',
        'embeddings_regularizer', 'activity_regularizer', 'embeddings_constraint', 'sparse', 'lora_rank', 'lora_alpha', 'quantization_config']);
      if (cfg.lora_rank !== undefined && cfg.lora_rank !== null) fail(ctx, layer, "'lora_rank' (a LoRA-adapted Embedding) is not supported");
      if (cfg.quantization_config !== undefined && cfg.quantization_config !== null) fail(ctx, layer, "'quantization_config' is not supported");
      const e = new Embedding({ inputDim: posInt(ctx, layer, cfg, 'input_dim'), outputDim: posInt(ctx, layer, cfg, 'output_dim'), maskZero: bool(ctx, layer, cfg, 'mask_zero', false) });
      return {
        layers: [e], weightCount: 1,
        load: (w) => {
          checkShape(ctx, layer, w[0], [e.inputDim, e.outputDim], 'embeddings');
          e.loadStateDict({ weight: Tensor.from(w[0].data, [e.inputDim, e.outputDim]) });
        },
      };
    }
    case 'Dropout': case 'SpatialDropout1D': case 'GaussianDropout': case 'AlphaDropout': case 'GaussianNoise': {
      if (cls !== 'Dropout') fail(ctx, layer, `${cls} is not supported (Dropout only)`);
      checkKeys(ctx, layer, cls, cfg, [...COMMON_HARMLESS, 'rate', 'noise_shape', 'seed']);
      return { layers: [new Dropout({ rate: rate(ctx, layer, cfg, 'rate') })], weightCount: 0 };
    }
    case 'Masking': {
      checkKeys(ctx, layer, cls, cfg, [...COMMON_HARMLESS, 'mask_value']);
      const v = cfg.mask_value ?? 0;
      if (typeof v !== 'number') fail(ctx, layer, `'mask_value' must be a number, got ${show(v)}`);
      return { layers: [new Masking({ maskValue: v })], weightCount: 0 };
    }
    case 'RepeatVector': {
      checkKeys(ctx, layer, cls, cfg, [...COMMON_HARMLESS, 'n']);
      return { layers: [new RepeatVector({ n: posInt(ctx, layer, cfg, 'n') })], weightCount: 0 };
    }
    case 'Activation': {
      checkKeys(ctx, layer, cls, cfg, [...COMMON_HARMLESS, 'activation']);
      return { layers: [new Activation({ activation: denseActivation(ctx, layer, 'activation', cfg.activation) })], weightCount: 0 };
    }
    default:
      return fail(ctx, layer, `unknown layer class ${show(cls)}; supported: Embedding, SimpleRNN, LSTM, GRU, Bidirectional, Dense, TimeDistributed(Dense), Dropout, Masking, RepeatVector, Activation, InputLayer`);
  }
}

/** A shape from a config (`[batch, ...]` with nulls) without its batch dimension, or undefined. */
function sampleShape(v: unknown): (number | null)[] | undefined {
  if (!Array.isArray(v) || v.length < 2) return undefined;
  return v.slice(1).map((d) => (Number.isSafeInteger(d) && d >= 1 ? d : null));
}

/**
 * An rnnkit Sequential from a Keras model description.
 *
 * `modelConfig` is the `model_config` / `modelTopology` object: {class_name: 'Sequential', config:
 * {name, layers: […]}} (tfjs and Keras 2 spelling, keys in snake_case or tfjs's camelCase), Keras 3's
 * (module/registered_name, an InputLayer with batch_shape, build_input_shape), or a wrapper
 * {model_config: …} / {modelTopology: …}. `weightsOf(layerName, index)` returns that layer's weights in
 * Keras get_weights() order (Bidirectional: the forward layer's, then the backward layer's;
 * TimeDistributed: its Dense's); `index` counts the model's layers without InputLayer (Keras's
 * model.layers). It is called once per layer that has weights.
 *
 * Errors: KerasFormatError naming `options.where`, the layer and what was expected for a malformed
 * description, an unknown layer class, an option that changes the math and rnnkit does not have,
 * a wrong weight count or shape.
 */
export function modelFromKeras(modelConfig: unknown, weightsOf: (layerName: string, index: number) => KerasWeight[], options: { flavour: KerasFlavour; where: string }): Sequential {
  if (!isObj(options) || !FLAVOURS.includes(options.flavour)) throw new TypeError(`modelFromKeras: options.flavour must be one of ${FLAVOURS.join(', ')}, got ${show(isObj(options) ? options.flavour : options)}`);
  const ctx: Ctx = { flavour: options.flavour, where: typeof options.where === 'string' ? options.where : 'Keras model' };
  let top: unknown = modelConfig;
  for (const k of ['model_config', 'modelTopology', 'model_topology']) {
    if (isObj(top) && isObj(top[k])) top = top[k];
  }
  if (isObj(top) && isObj(top.model_config)) top = top.model_config;
  if (!isObj(top)) throw new KerasFormatError(`${ctx.where}: the model description must be an object {class_name: 'Sequential', config}, got ${show(top)}`);
  const t = snakeKeys(top);
  if (t.class_name !== 'Sequential') throw new KerasFormatError(`${ctx.where}: model class ${show(t.class_name)} is not supported (only Sequential models)`);
  // Keras ≤ 2.1 stored a Sequential's config as the list of layers itself.
  const config: Obj = Array.isArray(t.config) ? { layers: t.config } : isObj(t.config) ? snakeKeys(t.config) : {};
  if (!Array.isArray(config.layers)) throw new KerasFormatError(`${ctx.where}: config.layers must be an array of layers, got ${show(config.layers)}`);
  const name = typeof config.name === 'string' ? config.name : 'sequential';
  let inputShape = sampleShape(config.build_input_shape);
  const plans: { name: string; index: number; plan: Plan }[] = [];
  // The weights of each layer, fetched once and checked against the sizes the config declares
  // before any layer (and its parameters) is made: a config cannot make rnnkit allocate more than
  // the weights hold.
  const weights = new Map<number, KerasWeight[]>();
  let index = 0;
  config.layers.forEach((raw, i) => {
    const e = entry(ctx, raw, `config.layers[${i}]`);
    if (e.cls === 'InputLayer') {
      checkKeys(ctx, e.name, e.cls, e.cfg, [...COMMON_HARMLESS, 'sparse', 'ragged', 'input_tensor', 'optional']);
      if (e.cfg.sparse === true || e.cfg.ragged === true) fail(ctx, e.name, 'a sparse or ragged InputLayer is not supported');
      inputShape = sampleShape(e.cfg.batch_shape ?? e.cfg.batch_input_shape) ?? inputShape;
      return;
    }
    if (plans.length === 0) {
      const s = sampleShape(e.cfg.batch_input_shape ?? e.cfg.batch_shape);
      if (s) inputShape = s;
      else if (Array.isArray(e.cfg.input_shape)) inputShape = [null, ...(e.cfg.input_shape as unknown[])].slice(1).map((d) => (Number.isSafeInteger(d) && (d as number) >= 1 ? (d as number) : null));
      if (e.cls === 'Embedding' && !inputShape) inputShape = [Number.isSafeInteger(e.cfg.input_length) ? (e.cfg.input_length as number) : null];
    }
    const at = index++;
    let w: KerasWeight[] | undefined;
    const fetch = (): void => {
      w = weightsOf(e.name, at);
      if (!Array.isArray(w)) fail(ctx, e.name, `weightsOf returned ${show(w)}, not an array of weights`);
      precheck(ctx, e.name, e.cls, e.cfg, w);
      weights.set(at, w);
    };
    // Layers allocate their parameters at build, except an Embedding (at construction): its weights
    // are checked first; the others' config is checked first (a bad config is named before weights).
    if (e.cls === 'Embedding') fetch();
    const plan = planLayer(ctx, e.cls, e.cfg, e.name);
    if (WEIGHTED.has(e.cls) && e.cls !== 'Embedding') fetch();
    if (plan.weightCount > 0 && w!.length !== plan.weightCount) {
      fail(ctx, e.name, `expected ${plan.weightCount} weights (Keras get_weights() order), got ${w!.length}${w!.length ? ` [${w!.map((x) => x.name).join(', ')}]` : ''}`);
    }
    plans.push({ name: e.name, index: at, plan });
  });
  if (plans.length === 0) throw new KerasFormatError(`${ctx.where}: the model has no layers`);
  if (!inputShape) {
    const first = plans[0];
    const w = weights.get(first.index);
    if (!w || !Array.isArray(w[0]?.shape) || w[0].shape.length !== 2) {
      throw new KerasFormatError(`${ctx.where}: the input shape is unknown (no InputLayer, batch_input_shape or build_input_shape, and layer ${first.name} has no kernel to take it from)`);
    }
    const rank3 = first.plan.layers[0] instanceof RecurrentBase || first.plan.layers[0] instanceof TimeDistributed;
    inputShape = rank3 ? [null, w[0].shape[0]] : [w[0].shape[0]];
  }
  // The declared input width must be the first weighted layer's kernel rows (before building allocates).
  const firstWeighted = plans.find((p) => p.plan.weightCount > 0);
  const before = firstWeighted ? plans.slice(0, plans.indexOf(firstWeighted)) : [];
  const widthKept = before.every((p) => p.plan.layers.every((l) => l instanceof Masking || l instanceof Dropout || l instanceof Activation || l instanceof RepeatVector));
  const firstLayer = firstWeighted?.plan.layers[0];
  if (firstWeighted && widthKept && !(firstLayer instanceof Embedding)) {
    const rows = weights.get(firstWeighted.index)![0].shape[0];
    const width = inputShape[inputShape.length - 1];
    if (width !== rows) {
      throw new KerasFormatError(`${ctx.where}: the input shape [${inputShape.map((d) => d ?? 'null').join(', ')}] has ${width} features, but layer ${firstWeighted.name}'s kernel has ${rows} rows`);
    }
  }
  const layers = plans.flatMap((p) => p.plan.layers);
  let model: Sequential;
  try {
    model = new Sequential(layers, { name, inputShape });
    model.build();
  } catch (e) {
    if (e instanceof KerasFormatError) throw e;
    throw new KerasFormatError(`${ctx.where}: ${(e as Error).message}`);
  }
  for (const p of plans) {
    const w = weights.get(p.index);
    if (!w || !p.plan.load) continue;
    try {
      p.plan.load(w);
    } catch (e) {
      if (e instanceof KerasFormatError) throw e;
      fail(ctx, p.name, (e as Error).message);
    }
  }
  model.markWeightsChanged();
  return model;
}

// ---------------------------------------------------------------------------------------------
// Writing

const RECURRENT_CLASS: Record<CellFamily, string> = { rnn: 'SimpleRNN', lstm: 'LSTM', gru: 'GRU' };
const CELL_NAME: Record<string, string> = { SimpleRNN: 'simple_rnn_cell', LSTM: 'lstm_cell', GRU: 'gru_cell' };
const SNAKE_CLASS: Record<string, string> = {
  SimpleRNN: 'simple_rnn', LSTM: 'lstm', GRU: 'gru', Bidirectional: 'bidirectional', Dense: 'dense', TimeDistributed: 'time_distributed',
  Embedding: 'embedding', Dropout: 'dropout', Masking: 'masking', RepeatVector: 'repeat_vector', Activation: 'activation',
};

/** The Keras name of a cell activation in `flavour`, or an UnsupportedFeatureError. */
function kerasCellActivation(a: NativeActivation | undefined, flavour: KerasFlavour, where: string, what: string): string | undefined {
  if (!a) return undefined;
  if (a.name === 'HardSigmoid' && a.beta === 0.5) {
    const slope = flavour === 'keras3' ? 1 / 6 : 0.2;
    if (Math.abs(a.alpha - slope) < 1e-12) return 'hard_sigmoid';
    throw new UnsupportedFeatureError(flavour === 'keras3' ? 'Keras 3' : flavour === 'tfjs' ? 'tfjs' : 'Keras 2',
      `hardSigmoid with alpha ${a.alpha} (${flavour}'s hard_sigmoid has alpha ${flavour === 'keras3' ? '1/6' : '0.2'})`, `${where} ${what}`);
  }
  const k = kerasActivation(a);
  if (!k) throw new UnsupportedFeatureError('Keras/tfjs', `activation ${a.name}(${a.alpha}, ${a.beta})`, `${where} ${what}`);
  return k;
}

interface Namer { (cls: string): string }
function namer(): Namer {
  const used = new Map<string, number>();
  return (cls) => {
    const base = SNAKE_CLASS[cls] ?? cls.toLowerCase();
    const n = used.get(base) ?? 0;
    used.set(base, n + 1);
    return n === 0 ? base : `${base}_${n}`;
  };
}

/** Keras 3 wraps every serialized object with its module and registered name. */
function wrapEntry(flavour: KerasFlavour, cls: string, config: Obj): Obj {
  return flavour === 'keras3' ? { module: 'keras.layers', class_name: cls, config, registered_name: null } : { class_name: cls, config };
}

function dtypeOf(flavour: KerasFlavour): unknown {
  return flavour === 'keras3' ? { module: 'keras', class_name: 'DTypePolicy', config: { name: 'float32' }, registered_name: null } : 'float32';
}

/** The Keras config of one direction of an rnnkit recurrent layer (layer `l` of a stack). */
function recurrentConfig(r: Recurrent, flavour: KerasFlavour, name: string, returnSequences: boolean, goBackwards: boolean, where: string): Obj {
  const f = r.features();
  const features: RecurrentFeatures = flavour === 'keras3' ? normaliseHardSigmoid(f) : f;
  assertExpressible(features, 'keras', flavour === 'tfjs' ? 'tfjs' : flavour === 'keras3' ? 'Keras 3' : 'Keras 2', where);
  if (flavour === 'tfjs' && f.family === 'gru' && f.linearBeforeReset) {
    throw new UnsupportedFeatureError('tfjs', 'a reset-after GRU (resetAfter: true, Keras reset_after=True)', `${where}: tfjs has only the reset-before GRU and tf.loadLayersModel refuses reset_after true; make the GRU with resetAfter: false`);
  }
  const cls = RECURRENT_CLASS[f.family];
  const cfg: Obj = { name, trainable: true, dtype: dtypeOf(flavour), units: r.units };
  if (f.family === 'rnn') cfg.activation = kerasCellActivation(f.candidateActivation, flavour, where, 'activation');
  else {
    cfg.activation = kerasCellActivation(f.candidateActivation, flavour, where, 'activation') ?? 'tanh';
    cfg.recurrent_activation = kerasCellActivation(f.gateActivation, flavour, where, 'recurrentActivation') ?? 'sigmoid';
  }
  cfg.use_bias = r.useBias;
  if (f.family === 'lstm') cfg.unit_forget_bias = false;
  cfg.dropout = r.numLayers > 1 ? 0 : r.dropout;
  cfg.recurrent_dropout = r.recurrentDropout;
  if (f.family === 'gru') cfg.reset_after = f.linearBeforeReset;
  cfg.return_sequences = returnSequences;
  cfg.return_state = false;
  cfg.go_backwards = goBackwards;
  cfg.stateful = r.stateful;
  cfg.unroll = false;
  if (flavour === 'tfjs') {
    cfg.kernel_initializer = { class_name: 'Zeros', config: {} };
    cfg.recurrent_initializer = { class_name: 'Zeros', config: {} };
    cfg.bias_initializer = { class_name: 'Zeros', config: {} };
  }
  return wrapEntry(flavour, cls, cfg);
}

/**
 * Keras 3's hard_sigmoid (slope 1/6) in the terms of layouts.ts's Keras table (which knows the 0.2 of
 * tfjs/Keras 2); a slope-0.2 hardSigmoid is then refused by kerasCellActivation, by name.
 */
function normaliseHardSigmoid(f: RecurrentFeatures): RecurrentFeatures {
  const fix = (a: NativeActivation | undefined): NativeActivation | undefined =>
    a && a.name === 'HardSigmoid' && Math.abs(a.alpha - 1 / 6) < 1e-12 && a.beta === 0.5 ? { ...a, alpha: 0.2 } : a;
  return { ...f, gateActivation: fix(f.gateActivation), candidateActivation: fix(f.candidateActivation), outputActivation: fix(f.outputActivation) };
}

/** One direction's weights in Keras order with names. */
function recurrentWeights(r: Recurrent, layer: number, reverse: boolean, names: string[]): KerasWeight[] {
  const f = r.features();
  const sd = r.stateDict();
  const sfx = `_l${layer}${reverse ? '_reverse' : ''}`;
  const H = r.units, G = gateCount(f.family);
  const f32 = (t: Tensor | undefined): Float32Array | undefined => (t ? Float32Array.from(t.data as ArrayLike<number>) : undefined);
  const k = torchToKeras(f.family, H, {
    weightIh: f32(sd[`weight_ih${sfx}`])!, weightHh: f32(sd[`weight_hh${sfx}`])!,
    ...(r.useBias ? { biasIh: f32(sd[`bias_ih${sfx}`]), biasHh: f32(sd[`bias_hh${sfx}`]) } : {}),
  }, { resetAfter: f.family === 'gru' && f.linearBeforeReset });
  const I = k.kernel.length / (G * H);
  const out: KerasWeight[] = [
    { name: names[0], shape: [I, G * H], data: k.kernel },
    { name: names[1], shape: [H, G * H], data: k.recurrentKernel },
  ];
  if (k.bias) out.push({ name: names[2], shape: k.bias.length === G * H ? [G * H] : [2, G * H], data: k.bias });
  return out;
}

function weightNames(flavour: KerasFlavour, prefix: string, cls: string, keys: string[]): string[] {
  return keys.map((k) => (flavour === 'tfjs' ? `${prefix}/${k}` : `${prefix}/${CELL_NAME[cls]}/${k}`));
}

function denseEntry(d: Dense, flavour: KerasFlavour, name: string): Obj {
  return wrapEntry(flavour, 'Dense', { name, trainable: true, dtype: dtypeOf(flavour), units: d.units, activation: d.activation, use_bias: d.useBias });
}
function denseWeights(d: Dense, prefix: string): KerasWeight[] {
  const sd = d.stateDict();
  const w = Float32Array.from(sd.weight.data as ArrayLike<number>);
  const out: KerasWeight[] = [{ name: `${prefix}/kernel`, shape: [d.inputSize, d.units], data: transpose(w, d.units, d.inputSize) }];
  if (d.useBias) out.push({ name: `${prefix}/bias`, shape: [d.units], data: Float32Array.from(sd.bias.data as ArrayLike<number>) });
  return out;
}

/**
 * The Keras description of an rnnkit Sequential (built: its input shape must be known): the model
 * config in the flavour's spelling (tfjs: the modelTopology tfjs-layers writes, snake_case keys,
 * batch_input_shape on the first layer; keras2: with an InputLayer; keras3: module/registered_name
 * entries, an InputLayer with batch_shape and build_input_shape) and each Keras layer's weights in
 * get_weights() order with Keras weight names ('lstm/kernel' for tfjs, 'lstm/lstm_cell/kernel' for
 * Keras 2/3). An rnnkit stack (numLayers > 1, bidirectional: true) becomes several Keras layers
 * (Bidirectional wrappers with merge_mode concat below the top; Dropout layers between the layers
 * for a stack's dropout).
 *
 * Errors: UnsupportedFeatureError naming what Keras/tfjs cannot express (peepholes, a projection,
 * CIFG, clip, …, per layouts.ts; a reset-after GRU for 'tfjs'; Bidirectional mergeMode 'none';
 * DropoutWrapper; a backward layer configured differently from the forward one for 'tfjs');
 * TypeError for a model that is not built.
 */
export function modelToKeras(model: Sequential, flavour: KerasFlavour): { modelConfig: Record<string, unknown>; layers: { name: string; className: string; weights: KerasWeight[] }[] } {
  if (!(model instanceof Sequential)) throw new TypeError(`modelToKeras: expected a Sequential, got ${show(model)}`);
  if (!FLAVOURS.includes(flavour)) throw new TypeError(`modelToKeras: flavour must be one of ${FLAVOURS.join(', ')}, got ${show(flavour)}`);
  if (!model.built) throw new TypeError('modelToKeras: the model is not built; call model.build(inputShape) (or predict once) first');
  const inputShape = (model.getConfig().config.inputShape ?? []) as (number | null)[];
  const next = namer();
  const entries: Obj[] = [];
  const layers: { name: string; className: string; weights: KerasWeight[] }[] = [];
  const add = (e: Obj, name: string, weights: KerasWeight[]): void => {
    entries.push(e);
    layers.push({ name, className: e.class_name as string, weights });
  };
  model.layers.forEach((layer, i) => {
    const where = `layer ${i} (${layer.className})`;
    if (layer instanceof DropoutWrapper) throw new UnsupportedFeatureError('Keras/tfjs', 'DropoutWrapper (TF1 dropout around a cell)', where);
    if (layer instanceof Bidirectional) {
      if (layer.merge === 'none') throw new UnsupportedFeatureError('Keras/tfjs', "Bidirectional mergeMode 'none' in a Sequential (two outputs)", where);
      if (layer.dropoutSource) throw new UnsupportedFeatureError('Keras/tfjs', 'DropoutWrapper (TF1 dropout around a cell)', where);
      const fw = layer.forwardLayer, bw = layer.backwardLayer;
      const name = next('Bidirectional');
      const innerName = next(fw.className);
      const fwCfg = recurrentConfig(fw, flavour, innerName, layer.returnSequences, false, `${where} forward layer`);
      const bwCfg = recurrentConfig(bw, flavour, `backward_${innerName}`, layer.returnSequences, true, `${where} backward layer`);
      const comparable = (e: Obj) => JSON.stringify({ ...(e.config as Obj), name: '', go_backwards: false });
      const differs = comparable(fwCfg) !== comparable(bwCfg);
      if (differs && flavour === 'tfjs') throw new UnsupportedFeatureError('tfjs', 'a Bidirectional backward layer configured differently from the forward layer', where);
      const cfg: Obj = { name, trainable: true, layer: fwCfg, merge_mode: layer.merge };
      if (differs || flavour === 'keras3') cfg.backward_layer = bwCfg;
      const cls = fw.className;
      const sub = (dir: string) => `${name}/${dir}_${innerName}`;
      const keys = ['kernel', 'recurrent_kernel', 'bias'];
      add(wrapEntry(flavour, 'Bidirectional', cfg), name, [
        ...recurrentWeights(fw, 0, false, weightNames(flavour, sub('forward'), cls, keys)),
        ...recurrentWeights(bw, 0, false, weightNames(flavour, sub('backward'), cls, keys)),
      ]);
      return;
    }
    if (layer instanceof Recurrent) {
      const L = layer.numLayers, cls = layer.className;
      const keys = ['kernel', 'recurrent_kernel', 'bias'];
      for (let l = 0; l < L; l++) {
        const rs = l < L - 1 ? true : layer.returnSequences;
        const w = `${where}${L > 1 ? ` layer ${l}` : ''}`;
        if (layer.bidirectional) {
          const name = next('Bidirectional');
          const innerName = next(cls);
          const fwCfg = recurrentConfig(layer, flavour, innerName, rs, false, w);
          const cfg: Obj = { name, trainable: true, layer: fwCfg, merge_mode: 'concat' };
          if (flavour === 'keras3') cfg.backward_layer = recurrentConfig(layer, flavour, `backward_${innerName}`, rs, true, w);
          add(wrapEntry(flavour, 'Bidirectional', cfg), name, [
            ...recurrentWeights(layer, l, false, weightNames(flavour, `${name}/forward_${innerName}`, cls, keys)),
            ...recurrentWeights(layer, l, true, weightNames(flavour, `${name}/backward_${innerName}`, cls, keys)),
          ]);
        } else {
          const name = next(cls);
          add(recurrentConfig(layer, flavour, name, rs, layer.goBackwards, w), name, recurrentWeights(layer, l, false, weightNames(flavour, name, cls, keys)));
        }
        if (l < L - 1 && layer.dropout > 0) {
          const name = next('Dropout');
          add(wrapEntry(flavour, 'Dropout', { name, trainable: true, dtype: dtypeOf(flavour), rate: layer.dropout }), name, []);
        }
      }
      return;
    }
    if (layer instanceof TimeDistributed) {
      const name = next('TimeDistributed');
      const dn = next('Dense');
      add(wrapEntry(flavour, 'TimeDistributed', { name, trainable: true, layer: denseEntry(layer.layer, flavour, dn) }), name,
        denseWeights(layer.layer, flavour === 'tfjs' ? name : `${name}/${dn}`));
      return;
    }
    if (layer instanceof Dense) {
      const name = next('Dense');
      add(denseEntry(layer, flavour, name), name, denseWeights(layer, name));
      return;
    }
    if (layer instanceof Embedding) {
      const name = next('Embedding');
      add(wrapEntry(flavour, 'Embedding', { name, trainable: true, dtype: dtypeOf(flavour), input_dim: layer.inputDim, output_dim: layer.outputDim, mask_zero: layer.maskZero }), name,
        [{ name: `${name}/embeddings`, shape: [layer.inputDim, layer.outputDim], data: Float32Array.from(layer.stateDict().weight.data as ArrayLike<number>) }]);
      return;
    }
    const simple = (cls: string, cfg: Obj): void => {
      const name = next(cls);
      add(wrapEntry(flavour, cls, { name, trainable: true, dtype: dtypeOf(flavour), ...cfg }), name, []);
    };
    if (layer instanceof Dropout) return simple('Dropout', { rate: layer.rate });
    if (layer instanceof Masking) return simple('Masking', { mask_value: layer.maskValue });
    if (layer instanceof RepeatVector) return simple('RepeatVector', { n: layer.n });
    if (layer instanceof Activation) return simple('Activation', { activation: layer.activation });
    throw new UnsupportedFeatureError('Keras/tfjs', `layer class ${(layer as { className: string }).className}`, where);
  });
  const batchShape = [null, ...inputShape];
  let modelConfig: Obj;
  if (flavour === 'tfjs') {
    (entries[0].config as Obj).batch_input_shape = batchShape;
    modelConfig = { class_name: 'Sequential', config: { name: model.name, layers: entries }, keras_version: 'tfjs-layers 4.22.0', backend: 'tensor_flow.js' };
  } else if (flavour === 'keras2') {
    const input = { class_name: 'InputLayer', config: { batch_input_shape: batchShape, dtype: 'float32', sparse: false, ragged: false, name: `${entries[0] ? (entries[0].config as Obj).name : 'input'}_input` } };
    modelConfig = { class_name: 'Sequential', config: { name: model.name, layers: [input, ...entries] }, keras_version: '2.15.0', backend: 'tensorflow' };
  } else {
    const input = { module: 'keras.layers', class_name: 'InputLayer', config: { batch_shape: batchShape, dtype: 'float32', sparse: false, name: 'input_layer' }, registered_name: null };
    modelConfig = {
      module: 'keras', class_name: 'Sequential',
      config: { name: model.name, trainable: true, dtype: dtypeOf(flavour), layers: [input, ...entries], build_input_shape: batchShape },
      registered_name: null, build_config: { input_shape: batchShape },
    };
  }
  return { modelConfig, layers };
}
