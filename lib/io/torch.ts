// PyTorch state dicts ↔ rnnkit layers and models. rnnkit already stores PyTorch's names, layouts
// and gate orders (weight_ih_l0 [G·H, I], …, suffix _reverse), so the conversion is a check of the
// keys and shapes plus a copy; what PyTorch cannot express (peepholes, CIFG, clip, a reset-before
// GRU, other activations, …) is refused by name through lib/io/layouts.ts.
//
// Files are safetensors (https://github.com/huggingface/safetensors): in Python,
//   from safetensors.torch import save_file; save_file(model.state_dict(), "model.safetensors")
// F32, F64, F16 and BF16 tensors are read (F16/BF16 widened to float32).
import { Tensor, formatShape, type DType } from '../tensor.js';
import { checkOptions, optionNames, show } from '../options.js';
import { GRU, LSTM, Recurrent, SimpleRNN } from '../layers/recurrent.js';
import { Bidirectional, DropoutWrapper } from '../layers/wrappers.js';
import { RecurrentBase } from '../layers/base.js';
import { Dense } from '../layers/dense.js';
import { Embedding, TimeDistributed } from '../layers/shaping.js';
import { Sequential, type ModelLayer } from '../model/sequential.js';
import { readSafetensorsFile, writeSafetensorsFile, type SafeTensor } from './safetensors.js';
import { UnsupportedFeatureError, assertExpressible } from './layouts.js';

/** The PyTorch modules rnnkit builds layers from. */
export type TorchKind = 'RNN' | 'LSTM' | 'GRU' | 'RNNCell' | 'LSTMCell' | 'GRUCell' | 'Linear' | 'Embedding';
const KINDS: readonly TorchKind[] = ['RNN', 'LSTM', 'GRU', 'RNNCell', 'LSTMCell', 'GRUCell', 'Linear', 'Embedding'];

export interface FromTorchOptions {
  /** The PyTorch module the weights come from. */
  kind: TorchKind;
  /** The module's key prefix in the state dict, e.g. 'lstm.' (default ''). */
  prefix?: string;
  /** nn.RNN / nn.RNNCell nonlinearity (default 'tanh'). */
  nonlinearity?: 'tanh' | 'relu';
  /** Scalar type of the layer (default 'float32'); the weights are converted. */
  dtype?: DType;
  /** Recurrent layers: return the whole output sequence, as PyTorch does (default true). */
  returnSequences?: boolean;
  /** Recurrent layers: also return the final states (default false). */
  returnState?: boolean;
  /**
   * The module's batch_first, accepted for the record: it does not change the weights, and rnnkit
   * layers always take [batch, steps, features]. A batch_first=False model's input [steps, batch,
   * features] must be transposed to [batch, steps, features] before forward/predict.
   */
  batchFirst?: boolean;
  /** Seed of the dropout generator (the weights are loaded, not drawn). */
  seed?: number;
}
const FROM_TORCH_OPTIONS = optionNames<FromTorchOptions>({
  kind: true, prefix: true, nonlinearity: true, dtype: true, returnSequences: true, returnState: true, batchFirst: true, seed: true,
});

const GATES: Record<'RNN' | 'LSTM' | 'GRU', number> = { RNN: 1, LSTM: 4, GRU: 3 };

/** A state-dict value as a Tensor (float data only). */
function asTensor(v: unknown, key: string, where: string): Tensor {
  if (Tensor.isTensor(v)) return v;
  const s = v as SafeTensor | null;
  if (s && typeof s === 'object' && Array.isArray(s.shape) && (s.data instanceof Float32Array || s.data instanceof Float64Array)) {
    if (s.dtype === 'I64' || s.dtype === 'I32' || s.dtype === 'U8') throw new TypeError(`${where}: ${key}: expected a floating-point tensor, got dtype ${s.dtype}`);
    return Tensor.from(s.data, s.shape);
  }
  throw new TypeError(`${where}: ${key}: expected a floating-point Tensor or safetensors tensor, got ${show(v)}`);
}

/** The entries of `dict` under `prefix`, with the prefix removed. */
function under(dict: Record<string, unknown>, prefix: string, where: string): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [k, v] of Object.entries(dict)) if (k.startsWith(prefix)) out.set(k.slice(prefix.length), asTensor(v, k, where));
  if (out.size === 0) {
    throw new TypeError(`${where}: no keys start with prefix ${show(prefix)} (keys: ${Object.keys(dict).slice(0, 12).join(', ')}${Object.keys(dict).length > 12 ? ', …' : ''})`);
  }
  return out;
}

function need(m: Map<string, Tensor>, key: string, prefix: string, rank: number, where: string): Tensor {
  const t = m.get(key);
  if (!t) throw new TypeError(`${where}: missing ${prefix}${key} (have: ${[...m.keys()].map((k) => prefix + k).join(', ')})`);
  if (t.rank !== rank || t.shape.some((d) => d < 1)) throw new RangeError(`${where}: ${prefix}${key} must have rank ${rank} with positive sizes, got ${formatShape(t.shape)}`);
  return t;
}

/**
 * Builds the rnnkit layer matching a PyTorch module's state dict and loads its weights: nn.LSTM
 * (with proj_size), nn.GRU (rnnkit GRU with resetAfter: true, PyTorch's form), nn.RNN (tanh or relu),
 * any num_layers, bidirectional and bias (all inferred from the keys and shapes), their cells (one
 * layer), nn.Linear (Dense) and nn.Embedding. A missing, unexpected or mis-shaped key is a
 * TypeError/RangeError naming it.
 */
export function fromTorch(stateDict: Record<string, Tensor | SafeTensor>, options: FromTorchOptions): Recurrent | Dense | Embedding {
  const where = 'fromTorch';
  if (typeof stateDict !== 'object' || stateDict === null) throw new TypeError(`${where}: stateDict: expected an object of tensors, got ${show(stateDict)}`);
  checkOptions(options, `${where}: options`, FROM_TORCH_OPTIONS);
  if (!KINDS.includes(options.kind)) throw new TypeError(`${where}: options.kind: expected one of ${KINDS.join(', ')}, got ${show(options.kind)}`);
  const prefix = options.prefix ?? '';
  if (typeof prefix !== 'string') throw new TypeError(`${where}: options.prefix: expected a string, got ${show(prefix)}`);
  if (options.nonlinearity !== undefined && options.nonlinearity !== 'tanh' && options.nonlinearity !== 'relu') {
    throw new TypeError(`${where}: options.nonlinearity: expected 'tanh' or 'relu', got ${show(options.nonlinearity)}`);
  }
  if (options.nonlinearity !== undefined && options.kind !== 'RNN' && options.kind !== 'RNNCell') {
    throw new TypeError(`${where}: options.nonlinearity: only for kind RNN or RNNCell`);
  }
  const m = under(stateDict, prefix, where);
  const dtype = options.dtype ?? 'float32';
  const w = `${where} (${options.kind}${prefix ? ` at ${prefix}` : ''})`;
  if (options.kind === 'Linear') {
    const weight = need(m, 'weight', prefix, 2, w);
    const [units, inputSize] = weight.shape;
    const bias = m.get('bias');
    const layer = new Dense({ units, inputSize, useBias: bias !== undefined, dtype });
    layer.loadStateDict(Object.fromEntries(m));
    return layer;
  }
  if (options.kind === 'Embedding') {
    const weight = need(m, 'weight', prefix, 2, w);
    const layer = new Embedding({ inputDim: weight.shape[0], outputDim: weight.shape[1], dtype, seed: 0 });
    layer.loadStateDict(Object.fromEntries(m));
    return layer;
  }
  const cell = options.kind.endsWith('Cell');
  const family = (cell ? options.kind.slice(0, -4) : options.kind) as 'RNN' | 'LSTM' | 'GRU';
  // A cell's keys have no layer suffix: rename them to the single layer's.
  const dict = new Map<string, Tensor>();
  for (const [k, t] of m) {
    if (cell && /_l\d+(_reverse)?$/.test(k)) throw new TypeError(`${w}: ${prefix}${k}: a cell's parameters have no layer suffix (is this an nn.${family}, not nn.${family}Cell?)`);
    dict.set(cell ? `${k}_l0` : k, t);
  }
  const wIh = need(dict, 'weight_ih_l0', prefix, 2, w);
  const G = GATES[family];
  if (wIh.shape[0] % G !== 0) throw new RangeError(`${w}: ${prefix}weight_ih${cell ? '' : '_l0'} has ${wIh.shape[0]} rows, not a multiple of the ${G} gate blocks of nn.${family}`);
  const units = wIh.shape[0] / G, inputSize = wIh.shape[1];
  let numLayers = 0;
  while (dict.has(`weight_ih_l${numLayers}`)) numLayers++;
  const bidirectional = dict.has('weight_ih_l0_reverse');
  const useBias = dict.has('bias_ih_l0');
  const hr = dict.get('weight_hr_l0');
  if (hr && family !== 'LSTM') throw new TypeError(`${w}: ${prefix}weight_hr_l0: only an nn.LSTM has a projection (proj_size)`);
  const common = {
    inputSize, units, numLayers, bidirectional, useBias, dtype,
    returnSequences: options.returnSequences ?? true, returnState: options.returnState ?? false,
    ...(options.seed !== undefined ? { seed: options.seed } : { seed: 0 }),
  };
  let layer: Recurrent;
  if (family === 'LSTM') layer = new LSTM({ ...common, ...(hr ? { projSize: hr.shape[0] } : {}) });
  else if (family === 'GRU') layer = new GRU({ ...common, resetAfter: true });
  else layer = new SimpleRNN({ ...common, activation: options.nonlinearity ?? 'tanh' });
  const shapes = layer.parameterShapes();
  for (const [k, t] of dict) {
    const shown = cell ? k.replace(/_l0$/, '') : k;
    if (!(k in shapes)) throw new TypeError(`${w}: unexpected key ${prefix}${shown} (nn.${options.kind} with these shapes has: ${Object.keys(shapes).map((s) => prefix + (cell ? s.replace(/_l0$/, '') : s)).join(', ')})`);
    if (t.shape.length !== shapes[k].length || t.shape.some((d, i) => d !== shapes[k][i])) {
      throw new RangeError(`${w}: ${prefix}${shown} must have shape ${formatShape(shapes[k])} (inputSize ${layer.inputSize}, units ${units}), got ${formatShape(t.shape)}`);
    }
  }
  for (const k of Object.keys(shapes)) if (!dict.has(k)) throw new TypeError(`${w}: missing ${prefix}${cell ? k.replace(/_l0$/, '') : k}`);
  layer.loadStateDict(Object.fromEntries(dict));
  return layer;
}

const TO_TORCH_OPTIONS = optionNames<{ cell?: boolean }>({ cell: true });

function copy(t: Tensor): Tensor {
  return Tensor.from(t.data.slice(), [...t.shape]);
}

/**
 * A layer's PyTorch state dict (copies): a SimpleRNN/LSTM/GRU stack as nn.RNN/nn.LSTM/nn.GRU, a
 * Bidirectional (concat) as a one-layer bidirectional module, a Dense or TimeDistributed(Dense) as
 * nn.Linear, an Embedding as nn.Embedding. With cell: true, a single-layer recurrent layer as
 * nn.LSTMCell etc. (no _l0 suffix). Features PyTorch cannot express are an UnsupportedFeatureError
 * naming them.
 */
export function toTorch(layer: ModelLayer, options: { cell?: boolean } = {}): Record<string, Tensor> {
  const where = `toTorch(${(layer as { className?: string })?.className ?? show(layer)})`;
  checkOptions(options, `${where}: options`, TO_TORCH_OPTIONS);
  let inner: ModelLayer = layer instanceof DropoutWrapper ? layer.layer : layer;
  if (inner instanceof TimeDistributed) inner = inner.layer;
  if (inner instanceof Dense || inner instanceof Embedding) {
    if (options.cell) throw new TypeError(`${where}: options.cell: only for a recurrent layer`);
    return Object.fromEntries(Object.entries(inner.stateDict()).map(([k, t]) => [k, copy(t)]));
  }
  if (inner instanceof Bidirectional) {
    if (inner.merge !== 'concat') throw new UnsupportedFeatureError('PyTorch', `Bidirectional mergeMode '${inner.merge}'`, 'a bidirectional PyTorch module concatenates its directions');
    if (options.cell) throw new TypeError(`${where}: options.cell: a cell has one direction`);
    assertExpressible(inner.forwardLayer.features(), 'torch', 'PyTorch', where);
    const b = inner.backwardLayer.features();
    assertExpressible({ ...b, goBackwards: false }, 'torch', 'PyTorch', where);
    return Object.fromEntries(Object.entries(inner.stateDict()).map(([k, t]) => [k, copy(t)]));
  }
  if (inner instanceof Recurrent) {
    assertExpressible(inner.features(), 'torch', 'PyTorch', where);
    const dict = inner.stateDict();
    if (options.cell) {
      if (inner.numLayers !== 1 || inner.bidirectional) throw new TypeError(`${where}: options.cell: a cell is one layer and one direction (numLayers ${inner.numLayers}, bidirectional ${inner.bidirectional})`);
      if (inner.features().projSize > 0) throw new UnsupportedFeatureError('PyTorch', 'a projection (projSize) in a cell', 'nn.LSTMCell has no proj_size');
      return Object.fromEntries(Object.entries(dict).map(([k, t]) => [k.replace(/_l0$/, ''), copy(t)]));
    }
    return Object.fromEntries(Object.entries(dict).map(([k, t]) => [k, copy(t)]));
  }
  if (layer instanceof RecurrentBase) throw new TypeError(`${where}: cannot describe a ${layer.className} as a PyTorch module`);
  return {};  // Dropout, RepeatVector, Masking, Activation: no parameters
}

/**
 * Reads a safetensors file into a state dict of Tensors: F32 → float32, F64 → float64, F16/BF16
 * widened to float32. Errors name the file and the tensor (see decodeSafetensors).
 */
export async function loadTorchSafetensors(path: string): Promise<Record<string, Tensor>> {
  if (typeof path !== 'string' || path === '') throw new TypeError(`loadTorchSafetensors: path: expected a file path, got ${show(path)}`);
  const { tensors } = await readSafetensorsFile(path);
  return Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, asTensor(t, `${path}: ${k}`, 'loadTorchSafetensors')]));
}

/** Metadata key of the model configuration saveTorchSafetensors writes (Sequential.getConfig()). */
export const TORCH_MODEL_METADATA = 'rnnkit.model';

function safe(t: Tensor): SafeTensor {
  return { dtype: t.data instanceof Float64Array ? 'F64' : 'F32', shape: [...t.shape], data: t.data as Float32Array | Float64Array };
}

/**
 * Writes a layer's (toTorch) or a model's PyTorch state dict as safetensors, atomically. A model's
 * keys are nn.Sequential's ('0.weight', '1.weight_ih_l0', …), and the file's metadata records the
 * model's configuration so sequentialFromTorchFile rebuilds it; every layer is checked with toTorch
 * first, so nothing is written when PyTorch cannot express one.
 */
export async function saveTorchSafetensors(layerOrModel: Sequential | ModelLayer, path: string, options: { cell?: boolean } = {}): Promise<void> {
  if (typeof path !== 'string' || path === '') throw new TypeError(`saveTorchSafetensors: path: expected a file path, got ${show(path)}`);
  const tensors: Record<string, SafeTensor> = {};
  const metadata: Record<string, string> = { format: 'pt' };
  if (layerOrModel instanceof Sequential) {
    if (!layerOrModel.built) throw new TypeError('saveTorchSafetensors: the model is not built (fit, predict or build it first)');
    layerOrModel.layers.forEach((l, i) => {
      for (const [k, t] of Object.entries(toTorch(l))) tensors[`${i}.${k}`] = safe(t);
    });
    metadata[TORCH_MODEL_METADATA] = JSON.stringify(layerOrModel.getConfig());
  } else {
    for (const [k, t] of Object.entries(toTorch(layerOrModel, options))) tensors[k] = safe(t);
  }
  await writeSafetensorsFile(path, tensors, metadata);
}

/**
 * An rnnkit Sequential from a whole PyTorch model's state dict: `layers` lists its modules in order,
 * each with its key prefix (e.g. [{ kind: 'Embedding', prefix: 'emb.' }, { kind: 'LSTM', prefix:
 * 'lstm.' }, { kind: 'Linear', prefix: 'fc.' }]); every key must belong to one of them.
 */
export function sequentialFromTorch(stateDict: Record<string, Tensor | SafeTensor>, layers: FromTorchOptions[], options: { name?: string } = {}): Sequential {
  const where = 'sequentialFromTorch';
  if (!Array.isArray(layers) || layers.length === 0) throw new TypeError(`${where}: layers: expected a non-empty array of { kind, prefix }, got ${show(layers)}`);
  checkOptions(options, `${where}: options`, ['name']);
  const prefixes = layers.map((l) => l?.prefix ?? '');
  for (const k of Object.keys(stateDict)) {
    if (!prefixes.some((p) => k.startsWith(p))) throw new TypeError(`${where}: key ${k} belongs to none of the layers (prefixes ${prefixes.map((p) => show(p)).join(', ')})`);
  }
  const built = layers.map((l, i) => {
    try {
      return fromTorch(stateDict, l);
    } catch (e) {
      (e as Error).message = `${where}: layers[${i}]: ${(e as Error).message}`;
      throw e;
    }
  });
  const first = built[0];
  const inputShape = first instanceof Embedding ? [null] : [null, first.inputSize];
  const model = new Sequential(built, { inputShape, ...(options.name ? { name: options.name } : {}) });
  model.build();
  return model;
}

const PARAM_NAME = /^(.*?)((?:weight|bias)_(?:ih|hh)(?:_l\d+(?:_reverse)?)?|weight_hr_l\d+(?:_reverse)?|weight|bias)$/;

/**
 * The layers of a state dict whose modules can be told from the keys and shapes alone: a single
 * module (nn.LSTM, nn.GRU and nn.RNN by their gate rows — an nn.RNN is taken as tanh —, a cell,
 * nn.Linear with a bias, nn.Embedding as a lone `weight`), or nn.Sequential-style numbered prefixes
 * ('0.', '1.', …) of such modules. undefined when the keys do not say (then name the layers).
 */
export function inferTorchLayers(stateDict: Record<string, Tensor | SafeTensor>): FromTorchOptions[] | undefined {
  const groups = new Map<string, Map<string, number[]>>();
  for (const [k, v] of Object.entries(stateDict)) {
    const m = PARAM_NAME.exec(k);
    if (!m || !v || !Array.isArray((v as { shape?: unknown }).shape)) return undefined;
    if (!groups.has(m[1])) groups.set(m[1], new Map());
    groups.get(m[1])!.set(m[2], [...(v as { shape: number[] }).shape]);
  }
  let prefixes = [...groups.keys()];
  if (prefixes.length > 1) {
    if (!prefixes.every((p) => /^\d+\.$/.test(p))) return undefined;
    prefixes = prefixes.sort((a, b) => parseInt(a, 10) - parseInt(b, 10));
  }
  const out: FromTorchOptions[] = [];
  for (const prefix of prefixes) {
    const g = groups.get(prefix)!;
    const cell = g.has('weight_ih');
    const ih = g.get(cell ? 'weight_ih' : 'weight_ih_l0'), hh = g.get(cell ? 'weight_hh' : 'weight_hh_l0');
    if (ih && hh && ih.length === 2 && hh.length === 2) {
      const hr = g.get('weight_hr_l0');
      const H = hr ? hr[1] : hh[1];
      const G = ih[0] / H;
      const family = hr || G === 4 ? 'LSTM' : G === 3 ? 'GRU' : G === 1 ? 'RNN' : undefined;
      if (!family) return undefined;
      out.push({ kind: (cell ? `${family}Cell` : family) as TorchKind, prefix });
    } else if (g.has('weight') && g.get('weight')!.length === 2) {
      out.push({ kind: g.has('bias') ? 'Linear' : 'Embedding', prefix });
    } else {
      return undefined;
    }
  }
  return out.length > 0 ? out : undefined;
}

/**
 * Rebuilds the Sequential saveTorchSafetensors wrote (from the configuration in the file's
 * metadata) with the file's weights. A file without that metadata is read when its keys tell the
 * modules (inferTorchLayers: one module, or numbered ones); otherwise it needs sequentialFromTorch
 * and the list of its layers (the error says so).
 */
export async function sequentialFromTorchFile(path: string): Promise<Sequential> {
  const { tensors, metadata } = await readSafetensorsFile(path);
  const config = metadata[TORCH_MODEL_METADATA];
  if (config === undefined) {
    const inferred = inferTorchLayers(tensors);
    if (inferred) return sequentialFromTorch(tensors, inferred);
    throw new TypeError(
      `${path}: a PyTorch state dict without rnnkit's model description: name its layers (sequentialFromTorch(dict, [{ kind, prefix }, …]); ` +
        `on the command line --torch-layers "emb.:Embedding,lstm.:LSTM,fc.:Linear"). Keys: ${Object.keys(tensors).slice(0, 8).join(', ')}${Object.keys(tensors).length > 8 ? ', …' : ''}`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(config);
  } catch (e) {
    throw new TypeError(`${path}: metadata ${TORCH_MODEL_METADATA} is not JSON (${(e as Error).message})`);
  }
  const model = Sequential.fromConfig(parsed);
  model.build();
  const params = model.namedParameters();
  for (const k of Object.keys(tensors)) if (!(k in params)) throw new TypeError(`${path}: unexpected tensor ${k} (the model has: ${Object.keys(params).join(', ')})`);
  for (const [k, p] of Object.entries(params)) {
    const t = tensors[k];
    if (!t) throw new TypeError(`${path}: missing tensor ${k} ${formatShape(p.shape)}`);
    const src = asTensor(t, `${path}: ${k}`, 'sequentialFromTorchFile');
    if (src.shape.length !== p.shape.length || src.shape.some((d, i) => d !== p.shape[i])) {
      throw new RangeError(`${path}: tensor ${k} must have shape ${formatShape(p.shape)}, got ${formatShape(src.shape)}`);
    }
    for (let i = 0; i < src.data.length; i++) {
      if (!Number.isFinite(src.data[i])) throw new RangeError(`${path}: tensor ${k}: element ${i} is ${src.data[i]}, not finite`);
    }
  }
  for (const [k, p] of Object.entries(params)) p.data.set(asTensor(tensors[k], k, 'sequentialFromTorchFile').data);
  model.markWeightsChanged();
  return model;
}
