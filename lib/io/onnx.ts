// ONNX export and import of rnnkit models, built on the protobufjs message classes of `onnx-proto`
// (ONNX 1.10 schema). Models are written with opset 15 of the default domain and IR version 8: the
// RNN/LSTM/GRU semantics are the same in every opset from 14 to the latest, and opset 15 / IR 8 is
// the newest pair the schema of onnx-proto describes. Import accepts opsets 13 to 21.
//
// Export: every layer kind maps to standard operators (batch-first input x [batch, steps, features]
// with dynamic batch and steps; the recurrent operators run time-major, layout 0, between Transposes):
//   Embedding            Gather(weight, ids)                  ids: int64 [batch, steps]
//   SimpleRNN/LSTM/GRU   RNN / LSTM / GRU per stacked layer   W, R, B, P via layouts.ts torchToOnnx
//   Bidirectional        one bidirectional operator; merge concat = Reshape, sum = ReduceSum,
//                        ave = ReduceMean, mul = ReduceProd over the direction axis
//   goBackwards          direction 'reverse', outputs flipped back to processing order (Slice step −1,
//                        or ReverseSequence within each sequence's length with sequence_lens)
//   Dense / TimeDistributed(Dense)  MatMul(x, Wᵀ) + Add(bias), then Softmax/Sigmoid/Tanh/Relu
//   Dropout              nothing (inference)         RepeatVector  Unsqueeze + Expand
//   Activation           Softmax/Sigmoid/Tanh/Relu   Masking, Embedding(maskZero)  refused
// Every weight layout conversion is lib/io/layouts.ts's; features ONNX cannot express (NIG, NFG, NOG,
// FGR, projection, cell blocks, cellClip, projClip) are refused by assertExpressible at export.
//
// Import: files written by exportOnnx and the graphs torch.onnx.export writes for nn.RNN/nn.LSTM/
// nn.GRU (+ nn.Linear, nn.Embedding) models, recognised by tracking what each value is (the data
// stream with its axes, constants, shapes, zero states) through the supported operators. Anything
// else is an OnnxFormatError naming the node and its operator.
import onnxProto from 'onnx-proto';
import type { onnx } from 'onnx-proto';
import { readFile } from 'node:fs/promises';
import { GRU, LSTM, Recurrent, SimpleRNN, type LSTMOptions, type GRUOptions, type SimpleRNNOptions } from '../layers/recurrent.js';
import { RecurrentBase, type MergeMode } from '../layers/base.js';
import { Bidirectional, DropoutWrapper } from '../layers/wrappers.js';
import { Dense, type DenseActivation } from '../layers/dense.js';
import { Activation, Dropout, Embedding, Masking, RepeatVector, TimeDistributed } from '../layers/shaping.js';
import { Sequential, type ModelLayer } from '../model/sequential.js';
import { Tensor } from '../tensor.js';
import { checkOptions, show } from '../options.js';
import { writeFileAtomic } from './files.js';
import type { NativeActivation, ActivationSpec } from '../activations.js';
import {
  assertExpressible, gateCount, onnxToTorch, torchToOnnx, transpose, UnsupportedFeatureError, type CellFamily, type RecurrentFeatures, type TorchCellWeights,
} from './layouts.js';

const proto = onnxProto.onnx;

/** Opset of the default ONNX domain that exportOnnx writes. */
export const ONNX_EXPORT_OPSET = 15;
/** IR version that exportOnnx writes (the one of opset 15). */
export const ONNX_EXPORT_IR_VERSION = 8;
/** Opsets of the default domain importOnnx accepts. */
export const ONNX_IMPORT_OPSETS: readonly [number, number] = [13, 21];

/** A malformed or unsupported ONNX file; the message names the file, the node or tensor, and what was expected. */
export class OnnxFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OnnxFormatError';
  }
}

export interface OnnxExportOptions {
  /**
   * Adds the graph input `sequence_lens` (int32 [batch]) wired to every recurrent operator that sees
   * the input's time axis (rnnkit's `lengths`: post-padding; outputs are 0 past each length, final
   * states are those of the last valid step). Default false.
   */
  sequenceLens?: boolean;
  /**
   * For a model with exactly one recurrent layer: adds the inputs `initial_h` (and `initial_c` for an
   * LSTM) [numLayers·directions, batch, units] (rnnkit's stacked state layout) and the outputs `h_n`
   * (and `c_n`) of the same shape. Default false (zero initial states; a bare layer with returnState
   * still gets the h_n/c_n outputs).
   */
  initialStates?: boolean;
  /** Only 15 is accepted (the opset written). */
  opset?: number;
  /** The graph name (default the model's name). */
  name?: string;
}

const EXPORT_OPTIONS = ['sequenceLens', 'initialStates', 'opset', 'name'];

// ---------------------------------------------------------------------------------------------
// Graph building

const DT = proto.TensorProto.DataType;
const AT = proto.AttributeProto.AttributeType;
const utf8 = new TextEncoder();
const INT64_MIN_SAFE = -(2 ** 62);

type Attr = onnx.IAttributeProto;
const attr = {
  int: (name: string, i: number): Attr => ({ name, type: AT.INT, i }),
  ints: (name: string, ints: readonly number[]): Attr => ({ name, type: AT.INTS, ints: [...ints] }),
  float: (name: string, f: number): Attr => ({ name, type: AT.FLOAT, f }),
  floats: (name: string, floats: readonly number[]): Attr => ({ name, type: AT.FLOATS, floats: [...floats] }),
  str: (name: string, s: string): Attr => ({ name, type: AT.STRING, s: utf8.encode(s) }),
  strs: (name: string, s: readonly string[]): Attr => ({ name, type: AT.STRINGS, strings: s.map((v) => utf8.encode(v)) }),
};

class GraphBuilder {
  readonly nodes: onnx.INodeProto[] = [];
  readonly initializers: onnx.ITensorProto[] = [];
  readonly inputs: onnx.IValueInfoProto[] = [];
  readonly outputs: onnx.IValueInfoProto[] = [];
  private n = 0;
  fresh(stem: string): string {
    return `${stem}_${this.n++}`;
  }
  floats(stem: string, dims: readonly number[], data: ArrayLike<number>): string {
    const name = this.fresh(stem);
    const raw = new Uint8Array(data.length * 4);
    const view = new DataView(raw.buffer);
    for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i], true);
    this.initializers.push({ name, dataType: DT.FLOAT, dims: [...dims], rawData: raw });
    return name;
  }
  int64s(stem: string, values: readonly number[]): string {
    const name = this.fresh(stem);
    const raw = new Uint8Array(values.length * 8);
    const view = new DataView(raw.buffer);
    values.forEach((v, i) => view.setBigInt64(i * 8, BigInt(v), true));
    this.initializers.push({ name, dataType: DT.INT64, dims: [values.length], rawData: raw });
    return name;
  }
  node(op: string, inputs: string[], attributes: Attr[] = [], outputs = 1): string[] {
    const name = this.fresh(op.toLowerCase());
    const out = Array.from({ length: outputs }, (_, k) => (outputs === 1 ? `${name}_out` : `${name}_out${k}`));
    while (inputs.length > 0 && inputs[inputs.length - 1] === '') inputs.pop();
    this.nodes.push({ name, opType: op, domain: '', input: inputs, output: out, attribute: attributes });
    return out;
  }
  one(op: string, inputs: string[], attributes: Attr[] = []): string {
    return this.node(op, inputs, attributes)[0];
  }
  /** Renames the output of the node that produced `value` to `name` (for graph outputs). */
  rename(value: string, name: string): void {
    for (const n of this.nodes) n.output = n.output!.map((o) => (o === value ? name : o));
    for (const n of this.nodes) n.input = n.input!.map((o) => (o === value ? name : o));
  }
}

function valueInfo(name: string, elemType: number, dims: readonly (number | string)[]): onnx.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  };
}

/** The ONNX activation names and their alpha/beta lists (consumed in order by the activations that take them). */
const TAKES_ALPHA = new Set(['Affine', 'LeakyRelu', 'ThresholdedRelu', 'ScaledTanh', 'HardSigmoid', 'Elu']);
const TAKES_BETA = new Set(['Affine', 'ScaledTanh', 'HardSigmoid']);

function activationLists(acts: NativeActivation[]): { names: string[]; alpha: number[]; beta: number[] } {
  return {
    names: acts.map((a) => a.name),
    alpha: acts.filter((a) => TAKES_ALPHA.has(a.name)).map((a) => a.alpha),
    beta: acts.filter((a) => TAKES_BETA.has(a.name)).map((a) => a.beta),
  };
}

const SIGMOID: NativeActivation = { name: 'Sigmoid', alpha: 0, beta: 0 };
const TANH: NativeActivation = { name: 'Tanh', alpha: 0, beta: 0 };

/** The activation list of one direction: LSTM [f, g, h], GRU [f, g], RNN [f]. */
function directionActivations(f: RecurrentFeatures): NativeActivation[] {
  if (f.family === 'lstm') return [f.gateActivation ?? SIGMOID, f.candidateActivation ?? TANH, f.outputActivation ?? TANH];
  if (f.family === 'gru') return [f.gateActivation ?? SIGMOID, f.candidateActivation ?? TANH];
  return [f.candidateActivation ?? TANH];
}

const OP_OF: Record<CellFamily, 'RNN' | 'LSTM' | 'GRU'> = { rnn: 'RNN', lstm: 'LSTM', gru: 'GRU' };

/** One recurrent layer as the exporter sees it: its directions as single-layer rnnkit layers' weights. */
interface RecurrentPlan {
  family: CellFamily;
  units: number;
  numLayers: number;
  dirs: 1 | 2;
  reverse: boolean; // a single goBackwards direction
  merge: MergeMode;
  returnSequences: boolean;
  /** features of each direction (forward, backward). */
  features: RecurrentFeatures[];
  /** weights[layer][dir] in rnnkit's layout. */
  weights: TorchCellWeights<Float32Array>[][];
  inputSize: number;
}

function f32(t: Tensor | undefined): Float32Array | undefined {
  if (!t) return undefined;
  return t.data instanceof Float32Array ? t.data : Float32Array.from(t.data);
}

function cellWeights(dict: Record<string, Tensor>, sfx: string): TorchCellWeights<Float32Array> {
  const w: TorchCellWeights<Float32Array> = { weightIh: f32(dict[`weight_ih${sfx}`])!, weightHh: f32(dict[`weight_hh${sfx}`])! };
  const bih = f32(dict[`bias_ih${sfx}`]), bhh = f32(dict[`bias_hh${sfx}`]), p = f32(dict[`weight_peephole${sfx}`]), hr = f32(dict[`weight_hr${sfx}`]);
  if (bih) w.biasIh = bih;
  if (bhh) w.biasHh = bhh;
  if (p) w.peephole = p;
  if (hr) w.weightHr = hr;
  return w;
}

function planRecurrent(layer: RecurrentBase, where: string): RecurrentPlan {
  if (layer instanceof DropoutWrapper) {
    const inner = layer.layer;
    if (inner.returnSequences !== layer.returnSequences) throw new TypeError(`${where}: a DropoutWrapper whose returnSequences differs from its layer's`);
    return planRecurrent(inner, where);
  }
  if (!layer.built) throw new TypeError(`${where}: the layer is not built (give inputSize or build the model first)`);
  if (layer instanceof Bidirectional) {
    const fw = layer.forwardLayer, bw = layer.backwardLayer;
    const ff = fw.features(), bf = bw.features();
    assertExpressible(ff, 'onnx', 'ONNX', `${where}: Bidirectional forward ${fw.className}`);
    assertExpressible(bf, 'onnx', 'ONNX', `${where}: Bidirectional backward ${bw.className}`);
    for (const k of ['clip', 'coupledInputForget', 'linearBeforeReset'] as const) {
      if (ff[k] !== bf[k]) throw new UnsupportedFeatureError('ONNX', `a Bidirectional whose backward layer has another ${k} than its forward layer`, where);
    }
    return {
      family: ff.family, units: ff.units, numLayers: 1, dirs: 2, reverse: false, merge: layer.merge, returnSequences: layer.returnSequences,
      features: [ff, bf], weights: [[cellWeights(fw.stateDict(), '_l0'), cellWeights(bw.stateDict(), '_l0')]], inputSize: ff.inputSize,
    };
  }
  if (!(layer instanceof Recurrent)) throw new TypeError(`${where}: cannot export a ${layer.className}`);
  const f = layer.features();
  assertExpressible(f, 'onnx', 'ONNX', `${where}: ${layer.className}`);
  const dirs = f.bidirectional ? 2 : 1;
  const dict = layer.stateDict();
  const weights: TorchCellWeights<Float32Array>[][] = [];
  for (let l = 0; l < f.numLayers; l++) {
    weights.push(Array.from({ length: dirs }, (_, d) => cellWeights(dict, `_l${l}${d === 1 ? '_reverse' : ''}`)));
  }
  return {
    family: f.family, units: f.units, numLayers: f.numLayers, dirs, reverse: f.goBackwards, merge: 'concat', returnSequences: layer.returnSequences,
    features: dirs === 2 ? [f, f] : [f], weights, inputSize: f.inputSize,
  };
}

interface ExportContext {
  g: GraphBuilder;
  /** The int32 sequence_lens input, when exported. */
  lens?: string;
  /** Its int64 cast (ReverseSequence), made once. */
  lens64?: string;
  initialH?: string;
  initialC?: string;
  stateOutputs: { h?: string; c?: string };
}

/**
 * Emits one recurrent layer; x is batch-first [N, T, I]. Returns the batch-first output
 * ([N, T, width] with returnSequences, else [N, width]).
 */
function emitRecurrent(ctx: ExportContext, p: RecurrentPlan, x: string, useLens: boolean, withStates: boolean): string {
  const { g } = ctx;
  const op = OP_OF[p.family];
  const H = p.units, D = p.dirs, G = gateCount(p.family);
  const f0 = p.features[0];
  let xt = g.one('Transpose', [x], [attr.ints('perm', [1, 0, 2])]);
  let y = '', yh: string[] = [], yc: string[] = [];
  const lens = useLens ? ctx.lens! : '';
  for (let l = 0; l < p.numLayers; l++) {
    const dirW = p.weights[l].map((w) => torchToOnnx(p.family, H, w));
    const I = dirW[0].W.length / (G * H);
    const cat = (parts: (Float32Array | undefined)[], n: number): Float32Array | undefined => {
      if (parts.every((q) => q === undefined)) return undefined;
      const out = new Float32Array(n * parts.length);
      parts.forEach((q, k) => q && out.set(q, k * n));
      return out;
    };
    const W = g.floats('W', [D, G * H, I], cat(dirW.map((w) => w.W), G * H * I)!);
    const R = g.floats('R', [D, G * H, H], cat(dirW.map((w) => w.R), G * H * H)!);
    const Bv = cat(dirW.map((w) => w.B), 2 * G * H);
    const B = Bv ? g.floats('B', [D, 2 * G * H], Bv) : '';
    const Pv = p.family === 'lstm' ? cat(dirW.map((w) => w.P), 3 * H) : undefined;
    const P = Pv ? g.floats('P', [D, 3 * H], Pv) : '';
    let h0 = '', c0 = '';
    if (withStates) {
      const slice = (v: string) => p.numLayers === 1 ? v : g.one('Slice', [v, g.int64s('start', [l * D]), g.int64s('end', [(l + 1) * D]), g.int64s('axes', [0])]);
      h0 = slice(ctx.initialH!);
      if (p.family === 'lstm') c0 = slice(ctx.initialC!);
    }
    const acts = activationLists(p.features.flatMap(directionActivations));
    const attrs: Attr[] = [
      attr.int('hidden_size', H),
      attr.str('direction', D === 2 ? 'bidirectional' : p.reverse ? 'reverse' : 'forward'),
      attr.strs('activations', acts.names),
    ];
    if (acts.alpha.length > 0) attrs.push(attr.floats('activation_alpha', acts.alpha));
    if (acts.beta.length > 0) attrs.push(attr.floats('activation_beta', acts.beta));
    if (f0.clip > 0) attrs.push(attr.float('clip', f0.clip));
    if (p.family === 'lstm') attrs.push(attr.int('input_forget', f0.coupledInputForget ? 1 : 0));
    if (p.family === 'gru') attrs.push(attr.int('linear_before_reset', f0.linearBeforeReset ? 1 : 0));
    const inputs = [xt, W, R, B, lens, h0];
    if (p.family === 'lstm') inputs.push(c0, P);
    const outs = g.node(op, inputs, attrs, p.family === 'lstm' ? 3 : 2);
    y = outs[0];
    yh.push(outs[1]);
    if (p.family === 'lstm') yc.push(outs[2]);
    if (l < p.numLayers - 1) {
      // [T, D, N, H] → [T, N, D·H] (directions concatenated), the next layer's input
      xt = g.one('Reshape', [g.one('Transpose', [y], [attr.ints('perm', [0, 2, 1, 3])]), g.int64s('shape', [0, 0, -1])]);
    }
    void I;
  }
  if (withStates) {
    ctx.stateOutputs.h = yh.length === 1 ? yh[0] : g.one('Concat', yh, [attr.int('axis', 0)]);
    if (yc.length > 0) ctx.stateOutputs.c = yc.length === 1 ? yc[0] : g.one('Concat', yc, [attr.int('axis', 0)]);
  }
  const last = yh[yh.length - 1];
  const mergeDirs = (v: string, axis: number, flatShape: number[]): string => {
    // v has the direction axis `axis` of size 2 (or 1) right before the H axis, batch-first already.
    if (D === 1) return g.one('Squeeze', [v, g.int64s('axes', [axis])]);
    switch (p.merge) {
      case 'sum': return g.one('ReduceSum', [v, g.int64s('axes', [axis])], [attr.int('keepdims', 0)]);
      case 'ave': return g.one('ReduceMean', [v], [attr.ints('axes', [axis]), attr.int('keepdims', 0)]);
      case 'mul': return g.one('ReduceProd', [v], [attr.ints('axes', [axis]), attr.int('keepdims', 0)]);
      default: return g.one('Reshape', [v, g.int64s('shape', flatShape)]);
    }
  };
  if (!p.returnSequences) {
    // Y_h [D, N, H] → [N, D, H] → merged [N, width]
    const t = g.one('Transpose', [last], [attr.ints('perm', [1, 0, 2])]);
    return mergeDirs(t, 1, [0, -1]);
  }
  // Y [T, D, N, H] → [N, T, D, H] → merged [N, T, width]
  const t = g.one('Transpose', [y], [attr.ints('perm', [2, 0, 1, 3])]);
  let out = mergeDirs(t, 2, [0, 0, -1]);
  if (p.reverse) {
    // rnnkit's goBackwards returns the outputs in processing order (Keras); ONNX keeps time order.
    if (useLens) {
      ctx.lens64 ??= g.one('Cast', [ctx.lens!], [attr.int('to', DT.INT64)]);
      out = g.one('ReverseSequence', [out, ctx.lens64], [attr.int('batch_axis', 0), attr.int('time_axis', 1)]);
    } else {
      out = g.one('Slice', [out, g.int64s('start', [-1]), g.int64s('end', [INT64_MIN_SAFE]), g.int64s('axes', [1]), g.int64s('step', [-1])]);
    }
  }
  return out;
}

const ACT_OP: Record<Exclude<DenseActivation, 'linear'>, string> = { softmax: 'Softmax', sigmoid: 'Sigmoid', tanh: 'Tanh', relu: 'Relu' };

function emitActivation(g: GraphBuilder, act: DenseActivation, x: string): string {
  if (act === 'linear') return x;
  return act === 'softmax' ? g.one('Softmax', [x], [attr.int('axis', -1)]) : g.one(ACT_OP[act], [x]);
}

function emitDense(g: GraphBuilder, d: Dense, x: string, where: string): string {
  if (!d.built) throw new TypeError(`${where}: the Dense layer is not built`);
  const sd = d.stateDict();
  const w = f32(sd.weight)!;
  // rnnkit/PyTorch weight [units, in] → MatMul's [in, units]
  const wt = g.floats('dense_W', [d.inputSize, d.units], transpose(w, d.units, d.inputSize));
  let y = g.one('MatMul', [x, wt]);
  if (sd.bias) y = g.one('Add', [y, g.floats('dense_b', [d.units], f32(sd.bias)!)]);
  return emitActivation(g, d.activation, y);
}

/**
 * Writes an rnnkit model (a built Sequential, or a single built recurrent layer) as an ONNX model
 * (opset 15, IR 8; see the header of lib/io/onnx.ts for the operators of each layer).
 * Graph inputs: `x` float [batch, steps, features] (int64 ids [batch, steps] when the model starts
 * with an Embedding; [batch, features] when it starts with a RepeatVector or Dense on vectors), and
 * with the options `sequence_lens` int32 [batch], `initial_h`/`initial_c` float
 * [numLayers·directions, batch, units]. Outputs: `y` (the model's output), and `h_n`/`c_n` with
 * initialStates (or a bare layer with returnState).
 * Errors: UnsupportedFeatureError naming a feature ONNX cannot express (NIG, NFG, NOG, FGR,
 * projSize, cellBlockSize, cellClip, projClip, Masking, Embedding maskZero); TypeError for an
 * unbuilt model, unknown options, or options that do not fit the model.
 */
export function exportOnnx(modelOrLayer: Sequential | RecurrentBase, options: OnnxExportOptions = {}): Uint8Array {
  checkOptions(options, 'exportOnnx: options', EXPORT_OPTIONS);
  const opset = options.opset ?? ONNX_EXPORT_OPSET;
  if (opset !== ONNX_EXPORT_OPSET) throw new RangeError(`exportOnnx: options.opset: only ${ONNX_EXPORT_OPSET} is written, got ${show(options.opset)}`);
  if (options.name !== undefined && typeof options.name !== 'string') throw new TypeError(`exportOnnx: options.name: expected a string, got ${show(options.name)}`);
  for (const k of ['sequenceLens', 'initialStates'] as const) {
    if (options[k] !== undefined && typeof options[k] !== 'boolean') throw new TypeError(`exportOnnx: options.${k}: expected a boolean, got ${show(options[k])}`);
  }
  let layers: ModelLayer[];
  let name: string;
  let bare = false;
  if (modelOrLayer instanceof Sequential) {
    if (!modelOrLayer.built) throw new TypeError('exportOnnx: the model is not built (build it, or fit/predict once)');
    layers = modelOrLayer.layers;
    name = modelOrLayer.name;
  } else if (modelOrLayer instanceof RecurrentBase) {
    layers = [modelOrLayer];
    name = modelOrLayer.className.toLowerCase();
    bare = true;
  } else {
    throw new TypeError(`exportOnnx: expected a Sequential or a recurrent layer, got ${show(modelOrLayer)}`);
  }
  name = options.name ?? name;
  const g = new GraphBuilder();
  const ctx: ExportContext = { g, stateOutputs: {} };
  const recurrent = layers.filter((l) => l instanceof RecurrentBase);
  const withStates = options.initialStates === true || (bare && (modelOrLayer as RecurrentBase).returnState);
  if (options.initialStates === true && recurrent.length !== 1) {
    throw new TypeError(`exportOnnx: options.initialStates needs a model with exactly one recurrent layer, this one has ${recurrent.length}`);
  }

  // The graph input
  const first = layers[0];
  let x = 'x';
  if (first instanceof Embedding) g.inputs.push(valueInfo('x', DT.INT64, ['batch', 'steps']));
  else if (first instanceof RepeatVector) g.inputs.push(valueInfo('x', DT.FLOAT, ['batch', 'features']));
  else if (first instanceof Dense) g.inputs.push({ name: 'x', type: { tensorType: { elemType: DT.FLOAT } } });  // [batch, (steps,) features]
  else g.inputs.push(valueInfo('x', DT.FLOAT, ['batch', 'steps', firstFeatures(first)]));
  if (options.sequenceLens === true) {
    ctx.lens = 'sequence_lens';
    g.inputs.push(valueInfo('sequence_lens', DT.INT32, ['batch']));
  }
  if (withStates) {
    const r = recurrent[0] as RecurrentBase;
    const p = planRecurrent(r, 'exportOnnx: layer 0');
    const rows = p.numLayers * p.dirs;
    ctx.initialH = 'initial_h';
    g.inputs.push(valueInfo('initial_h', DT.FLOAT, [rows, 'batch', p.units]));
    if (p.family === 'lstm') {
      ctx.initialC = 'initial_c';
      g.inputs.push(valueInfo('initial_c', DT.FLOAT, [rows, 'batch', p.units]));
    }
  }

  let lensLive = options.sequenceLens === true;
  let anyLens = false;
  layers.forEach((layer, i) => {
    const where = `exportOnnx: layer ${i} (${layer.className})`;
    if (layer instanceof RecurrentBase) {
      const p = planRecurrent(layer, where);
      x = emitRecurrent(ctx, p, x, lensLive, withStates);
      if (lensLive) anyLens = true;
      if (!p.returnSequences) lensLive = false;
    } else if (layer instanceof TimeDistributed) {
      x = emitDense(g, layer.layer, x, where);
    } else if (layer instanceof Dense) {
      x = emitDense(g, layer, x, where);
    } else if (layer instanceof Embedding) {
      if (layer.maskZero) throw new UnsupportedFeatureError('ONNX', 'Embedding maskZero (a mask flowing to later layers; use sequenceLens with post-padded lengths)', where);
      x = g.one('Gather', [g.floats('embedding', [layer.inputDim, layer.outputDim], f32(layer.stateDict().weight)!), x], [attr.int('axis', 0)]);
    } else if (layer instanceof Dropout) {
      // inference: nothing to do
    } else if (layer instanceof Activation) {
      x = emitActivation(g, layer.activation, x);
    } else if (layer instanceof RepeatVector) {
      const u = g.one('Unsqueeze', [x, g.int64s('axes', [1])]);
      x = g.one('Expand', [u, g.int64s('shape', [1, layer.n, 1])]);
      lensLive = false;
    } else if (layer instanceof Masking) {
      throw new UnsupportedFeatureError('ONNX', 'Masking (a mask of any pattern; a post-padded batch is expressed with exportOnnx(…, { sequenceLens: true }) and lengths)', where);
    } else {
      throw new TypeError(`${where}: cannot export a ${(layer as { className?: string }).className ?? show(layer)}`);
    }
  });
  if (options.sequenceLens === true && !anyLens) throw new TypeError('exportOnnx: options.sequenceLens: no recurrent layer reads the input sequence');
  if (x === 'x') x = g.one('Identity', ['x']);
  g.rename(x, 'y');
  g.outputs.push({ name: 'y', type: { tensorType: { elemType: DT.FLOAT } } });
  if (withStates) {
    g.rename(ctx.stateOutputs.h!, 'h_n');
    g.outputs.push({ name: 'h_n', type: { tensorType: { elemType: DT.FLOAT } } });
    if (ctx.stateOutputs.c) {
      g.rename(ctx.stateOutputs.c, 'c_n');
      g.outputs.push({ name: 'c_n', type: { tensorType: { elemType: DT.FLOAT } } });
    }
  }
  const model: onnx.IModelProto = {
    irVersion: ONNX_EXPORT_IR_VERSION,
    opsetImport: [{ domain: '', version: ONNX_EXPORT_OPSET }],
    producerName: 'rnnkit',
    graph: { name, node: g.nodes, initializer: g.initializers, input: g.inputs, output: g.outputs },
  };
  const problem = proto.ModelProto.verify(model);
  if (problem !== null) throw new Error(`exportOnnx: invalid ModelProto: ${problem}`);
  return proto.ModelProto.encode(model).finish();
}

function firstFeatures(layer: ModelLayer): number | string {
  if (layer instanceof RecurrentBase) return layer.inputSize;
  if (layer instanceof Dense) return layer.inputSize;
  if (layer instanceof TimeDistributed) return layer.layer.inputSize;
  return 'features';
}

/** exportOnnx, written atomically to `path` (lib/io/files.ts writeFileAtomic). */
export async function saveOnnx(model: Sequential | RecurrentBase, path: string, options?: OnnxExportOptions): Promise<void> {
  await writeFileAtomic(path, exportOnnx(model, options));
}

// ---------------------------------------------------------------------------------------------
// Reading: protobuf decoding and tensors

type Long = { toNumber(): number; low: number; high: number };
const MAX_TENSOR_ELEMENTS = 2 ** 31 - 1;

function int(v: number | Long | null | undefined, what: string): number {
  const n = v === null || v === undefined ? 0 : typeof v === 'number' ? v : v.toNumber();
  if (!Number.isSafeInteger(n)) throw new OnnxFormatError(`${what}: ${show(n)} is not a safe integer`);
  return n;
}

function decodeModel(bytes: Uint8Array, where: string): onnx.ModelProto {
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`${where}: expected the bytes of an ONNX file (a Uint8Array), got ${show(bytes)}`);
  if (bytes.length === 0) throw new OnnxFormatError(`${where}: the file is empty, not an ONNX model`);
  let m: onnx.ModelProto;
  try {
    m = proto.ModelProto.decode(bytes);
  } catch (e) {
    throw new OnnxFormatError(`${where}: not an ONNX model: the protobuf does not decode (${(e as Error).message}; truncated or another kind of file?)`);
  }
  if (!m.graph) throw new OnnxFormatError(`${where}: not an ONNX model: no graph (ModelProto.graph is missing)`);
  return m;
}

function defaultOpset(m: onnx.ModelProto, where: string): number {
  const entry = m.opsetImport.find((o) => (o.domain ?? '') === '' || o.domain === 'ai.onnx');
  if (!entry) throw new OnnxFormatError(`${where}: opset_import has no entry for the default domain ''`);
  return int(entry.version, `${where}: opset_import version`);
}

const DTYPE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(DT).map(([k, v]) => [v as number, k]));

interface ConstTensor {
  kind: 'const';
  float: boolean;
  dims: number[];
  data: Float32Array | number[];
}

/** A TensorProto's values, checked against what it declares before anything of that size is made. */
function readTensor(t: onnx.ITensorProto, what: string): ConstTensor {
  const dims = (t.dims ?? []).map((d, k) => {
    const n = int(d, `${what}: dims[${k}]`);
    if (n < 0) throw new OnnxFormatError(`${what}: dims[${k}] is negative (${n})`);
    return n;
  });
  let count = 1;
  for (const d of dims) {
    count *= d;
    if (count > MAX_TENSOR_ELEMENTS) throw new OnnxFormatError(`${what}: declares [${dims.join(', ')}] = more than ${MAX_TENSOR_ELEMENTS} elements; refused`);
  }
  if (t.dataLocation === proto.TensorProto.DataLocation.EXTERNAL) throw new OnnxFormatError(`${what}: stored as external data, which importOnnx does not read`);
  const dt = t.dataType ?? 0;
  const raw = t.rawData && t.rawData.length > 0 ? t.rawData : undefined;
  const size: Record<number, number> = { [DT.FLOAT]: 4, [DT.DOUBLE]: 8, [DT.INT64]: 8, [DT.INT32]: 4 };
  if (!(dt in size)) throw new OnnxFormatError(`${what}: data type ${DTYPE_NAMES[dt] ?? dt} is not supported (FLOAT, DOUBLE, INT32, INT64)`);
  const float = dt === DT.FLOAT || dt === DT.DOUBLE;
  if (raw) {
    if (raw.length !== count * size[dt]) {
      throw new OnnxFormatError(`${what}: raw_data has ${raw.length} bytes, expected ${count} × ${size[dt]} = ${count * size[dt]} for ${DTYPE_NAMES[dt]} [${dims.join(', ')}]`);
    }
    const view = new DataView(raw.buffer, raw.byteOffset, raw.length);
    if (float) {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = dt === DT.FLOAT ? view.getFloat32(4 * i, true) : view.getFloat64(8 * i, true);
      return { kind: 'const', float, dims, data: out };
    }
    const out: number[] = new Array(count);
    for (let i = 0; i < count; i++) {
      out[i] = dt === DT.INT32 ? view.getInt32(4 * i, true) : Number(view.getBigInt64(8 * i, true));
    }
    return { kind: 'const', float, dims, data: out };
  }
  const list: ArrayLike<number | Long> = dt === DT.FLOAT ? t.floatData ?? [] : dt === DT.DOUBLE ? t.doubleData ?? [] : dt === DT.INT32 ? t.int32Data ?? [] : (t.int64Data as (number | Long)[]) ?? [];
  if (list.length !== count) throw new OnnxFormatError(`${what}: holds ${list.length} values, expected ${count} for [${dims.join(', ')}]`);
  if (float) return { kind: 'const', float, dims, data: Float32Array.from(list as ArrayLike<number>) };
  return { kind: 'const', float, dims, data: Array.from(list, (v, i) => int(v, `${what}[${i}]`)) };
}

// ---------------------------------------------------------------------------------------------
// describeOnnx

export interface OnnxDescription {
  /** The default domain's opset. */
  opset: number;
  irVersion: number;
  /** producer_name and producer_version, e.g. 'pytorch 1.13.1'. */
  producer: string;
  graphName: string;
  inputs: { name: string; type: string; shape: (number | string)[] | null }[];
  outputs: { name: string; type: string; shape: (number | string)[] | null }[];
  /** Node counts by operator type. */
  nodes: Record<string, number>;
  initializers: { name: string; type: string; shape: number[] }[];
}

function describeValue(v: onnx.IValueInfoProto): { name: string; type: string; shape: (number | string)[] | null } {
  const tt = v.type?.tensorType;
  const shape = tt?.shape ? (tt.shape.dim ?? []).map((d) => (d.dimParam ? d.dimParam : d.dimValue !== null && d.dimValue !== undefined ? int(d.dimValue, 'dim') : '?')) : null;
  return { name: v.name ?? '', type: DTYPE_NAMES[tt?.elemType ?? 0] ?? 'UNDEFINED', shape };
}

/**
 * What an ONNX file holds (for `rnnkit inspect`): opset, producer, graph inputs/outputs with their
 * declared shapes, node counts by operator, initializer names and shapes. Reads nothing else;
 * an OnnxFormatError for bytes that are not an ONNX model.
 */
export function describeOnnx(bytes: Uint8Array, options: { where?: string } = {}): OnnxDescription {
  const where = options.where ?? 'describeOnnx';
  const m = decodeModel(bytes, where);
  const g = m.graph as onnx.GraphProto;
  const nodes: Record<string, number> = {};
  for (const n of g.node) nodes[n.opType ?? '?'] = (nodes[n.opType ?? '?'] ?? 0) + 1;
  return {
    opset: defaultOpset(m, where),
    irVersion: int(m.irVersion, `${where}: ir_version`),
    producer: [m.producerName, m.producerVersion].filter((s) => s).join(' '),
    graphName: g.name ?? '',
    inputs: g.input.map(describeValue),
    outputs: g.output.map(describeValue),
    nodes,
    initializers: g.initializer.map((t, k) => ({
      name: t.name ?? '', type: DTYPE_NAMES[t.dataType ?? 0] ?? 'UNDEFINED', shape: (t.dims ?? []).map((d, j) => int(d, `${where}: initializer ${k} dims[${j}]`)),
    })),
  };
}

// ---------------------------------------------------------------------------------------------
// importOnnx: what each value of the graph is

/** An axis of the data stream: batch N, time T, direction D, hidden H, features F, a unit axis '1'; a/b: the input's two leading axes before it is known which is time. */
type AxisName = 'N' | 'T' | 'D' | 'H' | 'F' | '1' | 'a' | 'b';
interface Axis {
  name: AxisName;
  /** Known size (features, hidden, directions), or null (batch, steps). */
  size: number | null;
}

interface RnnSpec {
  t: 'rnn';
  node: string;
  family: CellFamily;
  H: number;
  I: number;
  dirs: 1 | 2;
  reverse: boolean;
  clip: number;
  inputForget: boolean;
  linearBeforeReset: boolean;
  /** Activation specs per direction: LSTM [f, g, h], GRU [f, g], RNN [f]. */
  activations: ActivationSpec[][];
  weights: TorchCellWeights<Float32Array>[];
  useBias: boolean;
  peepholes: boolean;
  /** The operator reads sequence_lens. */
  lens: boolean;
  returnSequences: boolean;
  merge: MergeMode;
}
type LayerSpec =
  | RnnSpec
  | { t: 'emb'; weight: Float32Array; V: number; E: number }
  | { t: 'dense'; weight: Float32Array; bias?: Float32Array; U: number; I: number; act: DenseActivation }
  | { t: 'act'; act: DenseActivation }
  | { t: 'repeat'; n: number };

interface Pending {
  spec: RnnSpec;
  from: 'Y' | 'Y_h';
  merge?: MergeMode;
  reversed: boolean;
}
interface SeqValue {
  kind: 'seq';
  axes: Axis[];
  chain: readonly LayerSpec[];
  pending?: Pending;
  /** The last op made a Dense that a following Add (bias) or activation may complete. */
  fresh?: 'matmul' | 'dense';
}
type Value =
  | SeqValue
  | ConstTensor
  | { kind: 'ids'; axes: Axis[] }
  | { kind: 'shape' }
  | { kind: 'zeros' }
  | { kind: 'lens' }
  | { kind: 'state' }
  | { kind: 'stateInput'; name: string };

const ONNX_TO_ACT: Record<string, { name: string; alpha: boolean; beta: boolean; needs?: boolean }> = {
  Sigmoid: { name: 'sigmoid', alpha: false, beta: false },
  Tanh: { name: 'tanh', alpha: false, beta: false },
  Relu: { name: 'relu', alpha: false, beta: false },
  Softsign: { name: 'softsign', alpha: false, beta: false },
  Softplus: { name: 'softplus', alpha: false, beta: false },
  HardSigmoid: { name: 'hardSigmoid', alpha: true, beta: true },
  Affine: { name: 'affine', alpha: true, beta: true, needs: true },
  ScaledTanh: { name: 'scaledTanh', alpha: true, beta: true, needs: true },
  LeakyRelu: { name: 'leakyRelu', alpha: true, beta: false },
  ThresholdedRelu: { name: 'thresholdedRelu', alpha: true, beta: false },
  Elu: { name: 'elu', alpha: true, beta: false },
};

function attrsOf(n: onnx.INodeProto): Map<string, onnx.IAttributeProto> {
  return new Map((n.attribute ?? []).map((a) => [a.name ?? '', a]));
}
const dec = new TextDecoder();

class Importer {
  /** Some recurrent operator reads a graph input as its initial state. */
  stateInputs = false;
  readonly values = new Map<string, Value>();
  /** Which of the input's leading axes is time, once a recurrent operator has told. */
  aIs: 'N' | 'T' | undefined;
  inputKind: 'seq3' | 'seq2' | 'ids' | undefined;
  inputFeatures: number | null = null;
  where: string;
  opset: number;
  constructor(where: string, opset: number) {
    this.where = where;
    this.opset = opset;
  }
  fail(what: string): never {
    throw new OnnxFormatError(`${this.where}: ${what}`);
  }
  resolve(axes: Axis[]): Axis[] {
    if (!this.aIs) return axes;
    const other = this.aIs === 'N' ? 'T' : 'N';
    return axes.map((a) => (a.name === 'a' ? { ...a, name: this.aIs! } : a.name === 'b' ? { ...a, name: other } : a));
  }
  get(name: string, at: string): Value {
    const v = this.values.get(name);
    if (!v) this.fail(`${at}: input ${show(name)} is neither a graph input, an initializer nor the output of an earlier node (missing initializer, or nodes out of order)`);
    return v;
  }
  constInt(name: string | undefined, at: string): number[] {
    if (!name) this.fail(`${at}: a required input is missing`);
    const v = this.get(name, at);
    if (v.kind !== 'const' || v.float) this.fail(`${at}: input ${show(name)} must be a constant integer tensor`);
    return v.data as number[];
  }
  constFloat(name: string, at: string): ConstTensor & { data: Float32Array } {
    const v = this.get(name, at);
    if (v.kind !== 'const' || !v.float) this.fail(`${at}: input ${show(name)} must be a constant float tensor (an initializer)`);
    return v as ConstTensor & { data: Float32Array };
  }

  /** Turns a pending recurrent output into its layer; the value must then be a plain sequence or vector. */
  settle(v: SeqValue, at: string): SeqValue {
    const axes = this.resolve(v.axes);
    if (!v.pending) return { ...v, axes };
    const p = v.pending;
    if (axes.some((a) => a.name === 'D')) this.fail(`${at}: the directions of ${p.spec.node} are not merged before this node (expected Reshape/Reduce over the direction axis)`);
    const spec: RnnSpec = { ...p.spec, returnSequences: p.from === 'Y', merge: p.merge ?? 'concat' };
    if (p.from === 'Y') {
      const reversedOk = spec.dirs === 1 && spec.reverse ? p.reversed : !p.reversed;
      if (!reversedOk) {
        this.fail(`${at}: the output Y of ${p.spec.node} is used ${p.reversed ? 'reversed in time' : 'in time order'}, which rnnkit ${spec.reverse ? 'expresses only reversed (goBackwards returns processing order)' : 'cannot express'}`);
      }
    }
    return { kind: 'seq', axes: axes.map((a) => (a.name === 'H' ? { ...a, name: 'F' as const } : a)), chain: [...v.chain, spec] };
  }

  seq(name: string, at: string): SeqValue {
    const v = this.get(name, at);
    if (v.kind !== 'seq') this.fail(`${at}: input ${show(name)} is expected to be the model's data, got ${v.kind === 'const' ? 'a constant' : `a ${v.kind} value`}`);
    return v;
  }
}

function nodeLabel(n: onnx.INodeProto, k: number): string {
  return `node ${show(n.name || `#${k}`)} (${n.opType})`;
}

function permuted<T>(xs: T[], perm: number[], at: string, imp: Importer): T[] {
  if (perm.length !== xs.length || [...perm].sort().some((p, i) => p !== i)) imp.fail(`${at}: perm [${perm.join(', ')}] does not fit a rank-${xs.length} value`);
  return perm.map((p) => xs[p]);
}

function normAxis(a: number, rank: number, at: string, imp: Importer): number {
  const r = a < 0 ? a + rank : a;
  if (r < 0 || r >= rank) imp.fail(`${at}: axis ${a} is out of range for rank ${rank}`);
  return r;
}

/** Reshape of the data stream: copies (0), merges of known trailing axes (directions then hidden = concat), and −1 for the rest. */
function reshapeAxes(axes: Axis[], target: number[], at: string, imp: Importer): { axes: Axis[]; mergedDirections: boolean } {
  const out: Axis[] = [];
  let i = 0, merged = false;
  for (let k = 0; k < target.length; k++) {
    const t = target[k];
    if (t === 0) {
      if (k !== i || i >= axes.length) imp.fail(`${at}: shape entry ${k} = 0 does not copy a matching axis`);
      out.push(axes[i++]);
      continue;
    }
    const rest = t === -1 ? axes.slice(i) : undefined;
    let group: Axis[];
    if (rest) {
      if (k !== target.length - 1) imp.fail(`${at}: −1 is supported as the last shape entry only`);
      group = rest;
    } else {
      group = [];
      let prod = 1;
      while (i + group.length < axes.length && prod < t) {
        const a = axes[i + group.length];
        if (a.size === null) break;
        prod *= a.size;
        group.push(a);
      }
      if (prod !== t || group.length === 0) {
        if (t === 1 && axes[i]?.size === null) imp.fail(`${at}: reshape to [${target.join(', ')}] does not keep the batch and time axes`);
        // a single unknown axis kept as a number is not expressible
        imp.fail(`${at}: reshape to [${target.join(', ')}] is not a merge of known axes of the data (${axes.map((a) => a.name).join(', ')})`);
      }
    }
    i += group.length;
    if (group.length === 0) imp.fail(`${at}: reshape to [${target.join(', ')}] leaves nothing for −1`);
    if (group.length === 1) {
      out.push(group[0]);
      continue;
    }
    if (group.some((a) => a.size === null)) imp.fail(`${at}: reshape to [${target.join(', ')}] merges the batch or time axis`);
    const names = group.map((a) => a.name).filter((nm) => nm !== '1');
    if (names.length === 2 && names[0] === 'D' && names[1] === 'H') merged = true;
    else if (names.length > 1) imp.fail(`${at}: reshape merges axes ${names.join(', ')} (only directions then hidden, a concatenation, is understood)`);
    out.push({ name: names.includes('H') || names.includes('F') ? 'F' : (names[0] as AxisName) ?? '1', size: group.reduce((p, a) => p * (a.size as number), 1) });
  }
  if (i !== axes.length) imp.fail(`${at}: reshape to [${target.join(', ')}] drops axes of the data`);
  return { axes: out, mergedDirections: merged };
}

function activationSpecs(names: string[], alpha: number[], beta: number[], at: string, imp: Importer): ActivationSpec[] {
  let ia = 0, ib = 0;
  return names.map((nm) => {
    const e = ONNX_TO_ACT[nm];
    if (!e) imp.fail(`${at}: activation ${show(nm)} is not one of ${Object.keys(ONNX_TO_ACT).join(', ')}`);
    const spec: { name: string; alpha?: number; beta?: number } = { name: e.name };
    if (e.alpha) {
      if (ia < alpha.length) spec.alpha = alpha[ia++];
      else if (e.needs) imp.fail(`${at}: activation ${nm} without its activation_alpha`);
    }
    if (e.beta) {
      if (ib < beta.length) spec.beta = beta[ib++];
      else if (e.needs) imp.fail(`${at}: activation ${nm} without its activation_beta`);
    }
    return (spec.alpha === undefined && spec.beta === undefined ? e.name : spec) as ActivationSpec;
  });
}

function runNode(imp: Importer, n: onnx.INodeProto, k: number): void {
  const at = nodeLabel(n, k);
  const op = n.opType ?? '';
  if ((n.domain ?? '') !== '' && n.domain !== 'ai.onnx') imp.fail(`${at}: operator domain ${show(n.domain)} is not supported (only the default ONNX domain)`);
  const ins = n.input ?? [];
  const outs = n.output ?? [];
  const a = attrsOf(n);
  const set = (v: Value, idx = 0) => {
    if (outs[idx]) imp.values.set(outs[idx], v);
  };
  const intAttr = (name: string, dflt: number) => (a.has(name) ? int(a.get(name)!.i, `${at}: attribute ${name}`) : dflt);
  const intsAttr = (name: string) => (a.get(name)?.ints ?? []).map((v, j) => int(v, `${at}: attribute ${name}[${j}]`));
  const axesOf = (input: number, attrName = 'axes'): number[] => (ins[input] ? imp.constInt(ins[input], at) : intsAttr(attrName));
  switch (op) {
    case 'Constant': {
      const t = a.get('value');
      if (t?.t) return set(readTensor(t.t, `${at}: value`));
      if (a.has('value_float')) return set({ kind: 'const', float: true, dims: [], data: Float32Array.of(a.get('value_float')!.f ?? 0) });
      if (a.has('value_floats')) return set({ kind: 'const', float: true, dims: [a.get('value_floats')!.floats!.length], data: Float32Array.from(a.get('value_floats')!.floats!) });
      if (a.has('value_int')) return set({ kind: 'const', float: false, dims: [], data: [intAttr('value_int', 0)] });
      if (a.has('value_ints')) { const v = intsAttr('value_ints'); return set({ kind: 'const', float: false, dims: [v.length], data: v }); }
      return imp.fail(`${at}: a Constant without a supported value attribute`);
    }
    default:
      break;
  }
  const first = ins[0] ? imp.get(ins[0], at) : imp.fail(`${at}: has no inputs`);
  // the per-layer rows of a stacked state input (exportOnnx slices initial_h/initial_c per layer)
  if (first.kind === 'stateInput' && (op === 'Slice' || op === 'Identity')) return set(first);
  switch (op) {
    case 'Identity':
      return set(first);
    case 'Dropout':
      if (ins[2]) imp.fail(`${at}: Dropout with a training_mode input is not inference`);
      return set(first);
    case 'Cast': {
      const to = intAttr('to', 0);
      if (first.kind === 'const') return set({ ...first, float: to === DT.FLOAT || to === DT.DOUBLE, data: to === DT.FLOAT || to === DT.DOUBLE ? Float32Array.from(first.data) : Array.from(first.data, Math.trunc) });
      if (first.kind === 'seq' && to !== DT.FLOAT) imp.fail(`${at}: casts the model's data to ${DTYPE_NAMES[to] ?? to}`);
      return set(first);
    }
    case 'Shape':
      return set({ kind: 'shape' });
    case 'ConstantOfShape': {
      const v = a.get('value')?.t;
      if (v && Array.from(readTensor(v, `${at}: value`).data).some((x) => x !== 0)) imp.fail(`${at}: a ConstantOfShape of non-zero values is not an initial state rnnkit reads`);
      return set({ kind: 'zeros' });
    }
    case 'Expand':
    case 'Tile': {
      if (first.kind === 'zeros' || (first.kind === 'const' && Array.from(first.data).every((x) => x === 0) && first.float)) return set({ kind: 'zeros' });
      if (first.kind === 'shape' || (first.kind === 'const' && !first.float)) return set({ kind: 'shape' });
      if (first.kind === 'seq') {
        const s = imp.settle(first, at);
        const rep = imp.constInt(ins[1], at);
        if (s.axes.length !== 3 || s.axes[1].name !== '1' || rep.length !== 3 || rep[0] !== 1 || rep[2] !== 1 || rep[1] < 1 || (op === 'Tile' ? false : false)) {
          imp.fail(`${at}: only [batch, 1, features] → [batch, n, features] (RepeatVector) is understood`);
        }
        return set({ kind: 'seq', axes: [s.axes[0], { name: 'T', size: rep[1] }, s.axes[2]], chain: [...s.chain, { t: 'repeat', n: rep[1] }] });
      }
      return imp.fail(`${at}: unsupported use of ${op}`);
    }
    case 'Gather': {
      const idx = ins[1] ? imp.get(ins[1], at) : imp.fail(`${at}: no indices`);
      if (first.kind === 'const' && first.float && idx.kind === 'ids') {
        if (intAttr('axis', 0) !== 0 || first.dims.length !== 2) imp.fail(`${at}: an embedding Gather needs a [vocabulary, dim] table and axis 0`);
        const [V, E] = first.dims;
        return set({ kind: 'seq', axes: [...idx.axes, { name: 'F', size: E }], chain: [{ t: 'emb', weight: first.data as Float32Array, V, E }] });
      }
      if ((first.kind === 'shape' || (first.kind === 'const' && !first.float)) && idx.kind === 'const') return set({ kind: 'shape' });
      if (first.kind === 'seq' && first.pending && idx.kind === 'const' && !idx.float) {
        // y[:, -1, :] of a forward operator's output: its last step, i.e. rnnkit's returnSequences false
        const axes = imp.resolve(first.axes);
        const ax = normAxis(intAttr('axis', 0), axes.length, at, imp);
        const p = first.pending;
        if (idx.dims.length !== 0 || idx.data[0] !== -1 || axes[ax].name !== 'T' || p.from !== 'Y' || p.spec.dirs !== 1 || p.spec.reverse || p.reversed || p.spec.lens) {
          imp.fail(`${at}: only the last step (index −1 on the time axis) of a forward operator's output without sequence_lens is understood`);
        }
        return set({ ...first, axes: axes.filter((_, j) => j !== ax), pending: { ...p, from: 'Y_h' } });
      }
      return imp.fail(`${at}: unsupported Gather (only an embedding lookup in a constant table, or shape arithmetic)`);
    }
    case 'Unsqueeze': {
      if (first.kind === 'shape' || (first.kind === 'const' && !first.float)) return set({ kind: 'shape' });
      if (first.kind === 'zeros') return set(first);
      if (first.kind === 'seq') {
        const s = imp.settle(first, at);
        const ax = axesOf(1).map((x) => normAxis(x, s.axes.length + 1, at, imp));
        if (s.axes.length !== 2 || ax.length !== 1 || ax[0] !== 1) imp.fail(`${at}: only [batch, features] → [batch, 1, features] is understood`);
        return set({ ...s, axes: [s.axes[0], { name: '1', size: 1 }, s.axes[1]], fresh: undefined });
      }
      return imp.fail(`${at}: unsupported Unsqueeze`);
    }
    case 'Squeeze': {
      if (first.kind !== 'seq') return set(first.kind === 'const' ? { kind: 'shape' } : first);
      const axes = imp.resolve(first.axes);
      const ax = axesOf(1).map((x) => normAxis(x, axes.length, at, imp));
      if (ax.length === 0) imp.fail(`${at}: Squeeze without axes`);
      for (const x of ax) if (axes[x].size !== 1) imp.fail(`${at}: squeezes axis ${x} (${axes[x].name}), which is not of size 1`);
      return set({ ...first, axes: axes.filter((_, j) => !ax.includes(j)), fresh: undefined });
    }
    case 'Concat': {
      const vs = ins.map((nm) => imp.get(nm, at));
      if (vs.every((v) => v.kind === 'shape' || (v.kind === 'const' && !v.float))) return set({ kind: 'shape' });
      // final states of stacked operators (Y_h / Y_c of each), concatenated over layers: an extra output
      if (vs.every((v) => v.kind === 'state' || (v.kind === 'seq' && v.pending?.from === 'Y_h' && v.axes[0].name === 'D')) && intAttr('axis', 0) === 0) return set({ kind: 'state' });
      if (vs.every((v) => v.kind === 'zeros')) return set({ kind: 'zeros' });
      return imp.fail(`${at}: unsupported Concat (of ${vs.map((v) => v.kind).join(', ')})`);
    }
    case 'Slice': {
      if (first.kind === 'seq') {
        const axes = imp.resolve(first.axes);
        const starts = imp.constInt(ins[1], at), ends = imp.constInt(ins[2], at);
        const sAxes = ins[3] ? imp.constInt(ins[3], at) : starts.map((_, j) => j);
        const steps = ins[4] ? imp.constInt(ins[4], at) : starts.map(() => 1);
        const t = sAxes.length === 1 ? normAxis(sAxes[0], axes.length, at, imp) : -1;
        if (!first.pending || t < 0 || axes[t].name !== 'T' || steps[0] !== -1 || starts[0] !== -1 || ends[0] > -(2 ** 31)) {
          imp.fail(`${at}: only a whole time reversal of a recurrent output (start −1, step −1) is understood`);
        }
        return set({ ...first, axes, pending: { ...first.pending, reversed: !first.pending.reversed } });
      }
      return set(first.kind === 'const' ? { kind: 'shape' } : first);
    }
    case 'ReverseSequence': {
      const s = first.kind === 'seq' ? first : imp.fail(`${at}: ReverseSequence of something other than a recurrent output`);
      const lens = ins[1] ? imp.get(ins[1], at) : undefined;
      const axes = imp.resolve(s.axes);
      const ta = intAttr('time_axis', 0), ba = intAttr('batch_axis', 1);
      if (!s.pending || lens?.kind !== 'lens' || axes[ta]?.name !== 'T' || axes[ba]?.name !== 'N') imp.fail(`${at}: only the reversal of a recurrent output within the sequence_lens input is understood`);
      return set({ ...s, axes, pending: { ...s.pending!, reversed: !s.pending!.reversed } });
    }
    case 'Transpose': {
      if (first.kind === 'seq' || first.kind === 'ids') {
        const perm = intsAttr('perm');
        const axes = imp.resolve(first.axes);
        return set({ ...first, axes: permuted(axes, perm.length ? perm : axes.map((_, j) => axes.length - 1 - j), at, imp), ...(first.kind === 'seq' ? { fresh: undefined } : {}) } as Value);
      }
      if (first.kind === 'zeros' || first.kind === 'state') return set(first);
      return imp.fail(`${at}: unsupported Transpose of a ${first.kind} value`);
    }
    case 'Reshape': {
      if (first.kind !== 'seq') {
        if (first.kind === 'zeros' || first.kind === 'state' || first.kind === 'shape') return set(first);
        return imp.fail(`${at}: unsupported Reshape of a ${first.kind} value`);
      }
      if (intAttr('allowzero', 0) !== 0) imp.fail(`${at}: allowzero = 1 is not supported`);
      const { axes, mergedDirections } = reshapeAxes(imp.resolve(first.axes), imp.constInt(ins[1], at), at, imp);
      const pending = first.pending && mergedDirections ? { ...first.pending, merge: 'concat' as MergeMode } : first.pending;
      if (mergedDirections && !first.pending) imp.fail(`${at}: merges directions of no recurrent output`);
      return set({ ...first, axes, pending, fresh: undefined });
    }
    case 'ReduceSum':
    case 'ReduceMean':
    case 'ReduceProd': {
      const s = first.kind === 'seq' ? first : imp.fail(`${at}: ${op} of something other than a bidirectional output`);
      const axes = imp.resolve(s.axes);
      const useInput = op === 'ReduceSum' || imp.opset >= 18;
      const ax = (useInput ? axesOf(1) : intsAttr('axes')).map((x) => normAxis(x, axes.length, at, imp));
      if (!s.pending || ax.length !== 1 || axes[ax[0]].name !== 'D' || axes[ax[0]].size !== 2 || intAttr('keepdims', 1) !== 0) {
        imp.fail(`${at}: only ${op} over the direction axis of a bidirectional output (keepdims 0) is understood`);
      }
      const merge: MergeMode = op === 'ReduceSum' ? 'sum' : op === 'ReduceMean' ? 'ave' : 'mul';
      return set({ ...s, axes: axes.filter((_, j) => j !== ax[0]), pending: { ...s.pending!, merge } });
    }
    case 'RNN':
    case 'LSTM':
    case 'GRU':
      return runRecurrent(imp, n, at, op);
    case 'MatMul': {
      const s = imp.settle(imp.seq(ins[0], at), at);
      const w = imp.constFloat(ins[1], at);
      const F = s.axes[s.axes.length - 1].size;
      if (w.dims.length !== 2 || w.dims[0] !== F) imp.fail(`${at}: the weight ${show(ins[1])} is [${w.dims.join(', ')}], expected [${F}, units]`);
      const [I, U] = w.dims;
      return set({ kind: 'seq', axes: [...s.axes.slice(0, -1), { name: 'F', size: U }], chain: [...s.chain, { t: 'dense', weight: transpose(w.data, I, U), U, I, act: 'linear' }], fresh: 'matmul' });
    }
    case 'Gemm': {
      const s = imp.settle(imp.seq(ins[0], at), at);
      const w = imp.constFloat(ins[1], at);
      const alpha = a.has('alpha') ? a.get('alpha')!.f ?? 0 : 1, beta = a.has('beta') ? a.get('beta')!.f ?? 0 : 1;
      if (alpha !== 1 || beta !== 1 || intAttr('transA', 0) !== 0) imp.fail(`${at}: Gemm with alpha/beta other than 1 or transA is not a Dense layer`);
      const transB = intAttr('transB', 0) === 1;
      if (s.axes.length !== 2 || w.dims.length !== 2) imp.fail(`${at}: Gemm expects [batch, features] data and a 2-D weight`);
      const F = s.axes[1].size;
      const [U, I] = transB ? w.dims : [w.dims[1], w.dims[0]];
      if (I !== F) imp.fail(`${at}: the weight ${show(ins[1])} is [${w.dims.join(', ')}], which does not take ${F} features`);
      let bias: Float32Array | undefined;
      if (ins[2]) {
        const b = imp.constFloat(ins[2], at);
        if (b.data.length !== U) imp.fail(`${at}: the bias ${show(ins[2])} has ${b.data.length} values, expected ${U}`);
        bias = b.data;
      }
      const weight = transB ? w.data : transpose(w.data, I, U);
      return set({ kind: 'seq', axes: [s.axes[0], { name: 'F', size: U }], chain: [...s.chain, { t: 'dense', weight, ...(bias ? { bias } : {}), U, I, act: 'linear' }], fresh: 'dense' });
    }
    case 'Add': {
      const v0 = imp.get(ins[0], at), v1 = imp.get(ins[1], at);
      const [s, c] = v0.kind === 'seq' ? [v0, v1] : [v1 as SeqValue, v0];
      if (s.kind !== 'seq' || s.fresh !== 'matmul' || c.kind !== 'const' || !c.float) imp.fail(`${at}: only the bias Add right after a MatMul is understood`);
      const d = s.chain[s.chain.length - 1] as Extract<LayerSpec, { t: 'dense' }>;
      if (c.data.length !== d.U || (c.dims.length !== 1 && !(c.dims.slice(0, -1).every((x) => x === 1)))) imp.fail(`${at}: the bias has shape [${c.dims.join(', ')}], expected [${d.U}]`);
      return set({ ...s, chain: [...s.chain.slice(0, -1), { ...d, bias: c.data as Float32Array }], fresh: 'dense' });
    }
    case 'Softmax':
    case 'Sigmoid':
    case 'Tanh':
    case 'Relu': {
      const s = imp.settle(imp.seq(ins[0], at), at);
      if (op === 'Softmax') {
        const axis = intAttr('axis', imp.opset >= 13 ? -1 : 1);
        if (normAxis(axis, s.axes.length, at, imp) !== s.axes.length - 1 || (imp.opset < 13 && s.axes.length !== 2)) imp.fail(`${at}: only a softmax over the last axis is understood`);
      }
      const act = op.toLowerCase() as DenseActivation;
      const last = s.chain[s.chain.length - 1];
      if (s.fresh && last?.t === 'dense' && last.act === 'linear') return set({ ...s, chain: [...s.chain.slice(0, -1), { ...last, act }], fresh: undefined });
      return set({ ...s, chain: [...s.chain, { t: 'act', act }], fresh: undefined });
    }
    default:
      return imp.fail(`${at}: operator ${op} is not supported by importOnnx`);
  }
}

function runRecurrent(imp: Importer, n: onnx.INodeProto, at: string, op: 'RNN' | 'LSTM' | 'GRU'): void {
  const ins = n.input ?? [];
  const outs = n.output ?? [];
  const a = attrsOf(n);
  const family: CellFamily = op === 'RNN' ? 'rnn' : op === 'LSTM' ? 'lstm' : 'gru';
  const G = gateCount(family);
  const H = a.has('hidden_size') ? int(a.get('hidden_size')!.i, `${at}: hidden_size`) : imp.fail(`${at}: no hidden_size attribute`);
  if (H < 1) imp.fail(`${at}: hidden_size ${H} is not positive`);
  if (a.has('layout') && int(a.get('layout')!.i, 'layout') !== 0) imp.fail(`${at}: layout = 1 (batch-major) is not supported`);
  const direction = a.has('direction') ? dec.decode(a.get('direction')!.s ?? new Uint8Array()) : 'forward';
  if (!['forward', 'reverse', 'bidirectional'].includes(direction)) imp.fail(`${at}: direction ${show(direction)}`);
  const D = direction === 'bidirectional' ? 2 : 1;
  // X must be time-major [T, N, I]
  let x = imp.seq(ins[0], at);
  x = imp.settle(x, at);
  let axes = x.axes;
  if (axes.length === 3 && (axes[0].name === 'a' || axes[0].name === 'b')) {
    imp.aIs = axes[0].name === 'a' ? 'T' : 'N';  // the axis X reads as time tells which input axis is time
    axes = imp.resolve(axes);
  }
  if (axes.length !== 3 || axes[0].name !== 'T' || axes[1].name !== 'N') {
    imp.fail(`${at}: X must be time-major [steps, batch, features], got axes [${axes.map((q) => q.name).join(', ')}]`);
  }
  const W = imp.constFloat(ins[1] ?? '', at), R = imp.constFloat(ins[2] ?? '', at);
  const I = W.dims[2];
  const shapeIs = (t: ConstTensor, want: number[], what: string) => {
    if (t.dims.length !== want.length || t.dims.some((d, j) => d !== want[j])) imp.fail(`${at}: ${what} has shape [${t.dims.join(', ')}], expected [${want.join(', ')}]`);
  };
  shapeIs(W, [D, G * H, W.dims[2] ?? 0], 'W');
  if (I < 1) imp.fail(`${at}: W has no input columns`);
  if (axes[2].size !== null && axes[2].size !== I) imp.fail(`${at}: X has ${axes[2].size} features but W takes ${I}`);
  shapeIs(R, [D, G * H, H], 'R');
  const B = ins[3] ? imp.constFloat(ins[3], at) : undefined;
  if (B) shapeIs(B, [D, 2 * G * H], 'B');
  if (ins[4]) {
    const l = imp.get(ins[4], at);
    if (l.kind !== 'lens') imp.fail(`${at}: sequence_lens must be a graph input (int32 [batch])`);
  }
  for (const [j, what] of [[5, 'initial_h'], [6, 'initial_c']] as const) {
    if (!ins[j]) continue;
    const v = imp.get(ins[j], at);
    if (v.kind === 'stateInput') { imp.stateInputs = true; continue; }
    if (v.kind !== 'zeros') imp.fail(`${at}: ${what} must be zeros (a ConstantOfShape or Expand of 0), got a ${v.kind} value`);
  }
  const P = family === 'lstm' && ins[7] ? imp.constFloat(ins[7], at) : undefined;
  if (P) shapeIs(P, [D, 3 * H], 'P');
  const names = (a.get('activations')?.strings ?? []).map((s) => dec.decode(s));
  const defaults = family === 'lstm' ? ['Sigmoid', 'Tanh', 'Tanh'] : family === 'gru' ? ['Sigmoid', 'Tanh'] : ['Tanh'];
  const per = defaults.length;
  const list = names.length === 0 ? Array.from({ length: D }, () => defaults).flat() : names;
  if (list.length !== per * D) imp.fail(`${at}: ${list.length} activations, expected ${per * D} (${per} per direction)`);
  const specs = activationSpecs(list, a.get('activation_alpha')?.floats ?? [], a.get('activation_beta')?.floats ?? [], at, imp);
  const clip = a.has('clip') ? a.get('clip')!.f ?? 0 : 0;
  if (!(clip >= 0)) imp.fail(`${at}: clip ${clip}`);
  const weights: TorchCellWeights<Float32Array>[] = [];
  for (let d = 0; d < D; d++) {
    const part = (t: ConstTensor & { data: Float32Array } | undefined, n: number) => t?.data.slice(d * n, (d + 1) * n);
    const w = { W: part(W, G * H * I)!, R: part(R, G * H * H)!, ...(B ? { B: part(B, 2 * G * H) } : {}), ...(P ? { P: part(P, 3 * H) } : {}) };
    weights.push(onnxToTorch(family, H, w as { W: Float32Array; R: Float32Array }));
  }
  const spec: RnnSpec = {
    t: 'rnn', node: at, family, H, I, dirs: D, reverse: direction === 'reverse', clip,
    inputForget: family === 'lstm' && a.has('input_forget') && int(a.get('input_forget')!.i, 'input_forget') !== 0,
    linearBeforeReset: family === 'gru' && a.has('linear_before_reset') && int(a.get('linear_before_reset')!.i, 'linear_before_reset') !== 0,
    activations: Array.from({ length: D }, (_, d) => specs.slice(d * per, (d + 1) * per)),
    weights, useBias: B !== undefined, peepholes: P !== undefined, lens: !!ins[4], returnSequences: true, merge: 'concat',
  };
  const chain = x.chain;
  const y: SeqValue = { kind: 'seq', axes: [axes[0], { name: 'D', size: D }, axes[1], { name: 'H', size: H }], chain, pending: { spec, from: 'Y', reversed: false } };
  const yh: SeqValue = { kind: 'seq', axes: [{ name: 'D', size: D }, axes[1], { name: 'H', size: H }], chain, pending: { spec, from: 'Y_h', reversed: false } };
  if (outs[0]) imp.values.set(outs[0], y);
  if (outs[1]) imp.values.set(outs[1], yh);
  if (outs[2]) imp.values.set(outs[2], { kind: 'state' });
}

function makeRecurrent(s: RnnSpec, dir: number, extra: { returnState?: boolean; numLayers?: number; bidirectional?: boolean } = {}): Recurrent {
  const acts = s.activations[dir];
  const common = {
    inputSize: s.I, units: s.H, returnSequences: s.returnSequences, useBias: s.useBias,
    goBackwards: !extra.bidirectional && (dir === 1 || (s.dirs === 1 && s.reverse)),
    ...(s.clip > 0 ? { clip: s.clip } : {}), ...extra,
  };
  if (s.family === 'lstm') {
    const o: LSTMOptions = { ...common, recurrentActivation: acts[0], candidateActivation: acts[1], outputActivation: acts[2], peepholes: s.peepholes, coupledInputForget: s.inputForget };
    return new LSTM(o);
  }
  if (s.family === 'gru') {
    const o: GRUOptions = { ...common, recurrentActivation: acts[0], activation: acts[1], resetAfter: s.linearBeforeReset };
    return new GRU(o);
  }
  const o: SimpleRNNOptions = { ...common, activation: acts[0] };
  return new SimpleRNN(o);
}

function loadCell(layer: Recurrent, w: TorchCellWeights<Float32Array>, s: RnnSpec): void {
  const G = gateCount(s.family);
  const dict: Record<string, Tensor> = {
    weight_ih_l0: Tensor.from(w.weightIh, [G * s.H, s.I]),
    weight_hh_l0: Tensor.from(w.weightHh, [G * s.H, s.H]),
  };
  if (s.useBias) {
    dict.bias_ih_l0 = Tensor.from(w.biasIh!, [G * s.H]);
    dict.bias_hh_l0 = Tensor.from(w.biasHh!, [G * s.H]);
  }
  if (s.peepholes) dict.weight_peephole_l0 = Tensor.from(w.peephole!, [3 * s.H]);
  layer.loadStateDict(dict);
}

function buildLayer(spec: LayerSpec): ModelLayer {
  switch (spec.t) {
    case 'emb': {
      const e = new Embedding({ inputDim: spec.V, outputDim: spec.E });
      e.loadStateDict({ weight: Tensor.from(spec.weight, [spec.V, spec.E]) });
      return e;
    }
    case 'dense': {
      const d = new Dense({ inputSize: spec.I, units: spec.U, activation: spec.act, useBias: spec.bias !== undefined });
      d.loadStateDict({ weight: Tensor.from(spec.weight, [spec.U, spec.I]), ...(spec.bias ? { bias: Tensor.from(spec.bias, [spec.U]) } : {}) });
      return d;
    }
    case 'act':
      return new Activation({ activation: spec.act });
    case 'repeat':
      return new RepeatVector({ n: spec.n });
    case 'rnn': {
      const fw = makeRecurrent(spec, 0);
      loadCell(fw, spec.weights[0], spec);
      if (spec.dirs === 1) return fw;
      const bw = makeRecurrent(spec, 1);
      loadCell(bw, spec.weights[1], spec);
      return new Bidirectional(fw, { mergeMode: spec.merge, backwardLayer: bw });
    }
  }
}

/** Decodes and runs the importer over a graph: the layer specs of its first output. */
function parseGraph(bytes: Uint8Array, where: string): { chain: readonly LayerSpec[]; imp: Importer; g: onnx.GraphProto; outName: string } {
  const m = decodeModel(bytes, where);
  const opset = defaultOpset(m, where);
  if (opset < ONNX_IMPORT_OPSETS[0] || opset > ONNX_IMPORT_OPSETS[1]) throw new OnnxFormatError(`${where}: opset ${opset} is outside the supported ${ONNX_IMPORT_OPSETS[0]}–${ONNX_IMPORT_OPSETS[1]}`);
  const g = m.graph as onnx.GraphProto;
  const imp = new Importer(where, opset);
  g.initializer.forEach((t, k) => {
    if (!t.name) throw new OnnxFormatError(`${where}: initializer ${k} has no name`);
    imp.values.set(t.name, readTensor(t, `${where}: initializer ${show(t.name)}`));
  });
  let dataInputs = 0;
  for (const v of g.input) {
    const name = v.name ?? '';
    if (imp.values.has(name)) continue;  // an initializer listed as an input (IR < 4 style)
    const tt = v.type?.tensorType;
    const dims = tt?.shape ? (tt.shape.dim ?? []).map((d) => (d.dimValue !== null && d.dimValue !== undefined && !d.dimParam ? int(d.dimValue, `${where}: input ${name} dim`) : null)) : undefined;
    const et = tt?.elemType ?? 0;
    if (et === DT.INT32 && dims?.length === 1) { imp.values.set(name, { kind: 'lens' }); continue; }
    if (dataInputs === 1 && et === DT.FLOAT) { imp.values.set(name, { kind: 'stateInput', name }); continue; }
    dataInputs++;
    if (et === DT.INT64 || et === DT.INT32) {
      if (dims && dims.length !== 2) throw new OnnxFormatError(`${where}: input ${show(name)}: ids must be [batch, steps], got rank ${dims.length}`);
      imp.inputKind = 'ids';
      imp.values.set(name, { kind: 'ids', axes: [{ name: 'a', size: null }, { name: 'b', size: null }] });
    } else if (et === DT.FLOAT) {
      const rank = dims?.length ?? 3;
      const F = dims?.[rank - 1] ?? null;
      imp.inputFeatures = F;
      if (rank === 3) {
        imp.inputKind = 'seq3';
        imp.values.set(name, { kind: 'seq', axes: [{ name: 'a', size: null }, { name: 'b', size: null }, { name: 'F', size: F }], chain: [] });
      } else if (rank === 2) {
        imp.inputKind = 'seq2';
        imp.values.set(name, { kind: 'seq', axes: [{ name: 'N', size: null }, { name: 'F', size: F }], chain: [] });
      } else throw new OnnxFormatError(`${where}: input ${show(name)} has rank ${rank}; expected [batch, steps, features] or [batch, features]`);
    } else throw new OnnxFormatError(`${where}: input ${show(name)} has type ${DTYPE_NAMES[et] ?? et}; expected FLOAT data or INT64/INT32 ids`);
  }
  if (dataInputs === 0) throw new OnnxFormatError(`${where}: the graph has no data input`);
  g.node.forEach((n, k) => runNode(imp, n, k));
  const outName = g.output[0]?.name;
  if (!outName) throw new OnnxFormatError(`${where}: the graph has no output`);
  const out = imp.values.get(outName);
  if (!out || out.kind !== 'seq') throw new OnnxFormatError(`${where}: the first output ${show(outName)} is ${out ? `a ${out.kind} value` : 'not computed by any node'}, not the model's data`);
  const final = imp.settle(out, `output ${show(outName)}`);
  if (final.chain.length === 0) throw new OnnxFormatError(`${where}: the graph has no layers (the output is the input)`);
  if (imp.aIs === undefined) imp.aIs = 'N';
  const axes = imp.resolve(final.axes);
  const names = axes.map((q) => q.name).join('');
  const timeMajor = imp.aIs === 'T';
  if (!(names === 'NF' || (names === 'NTF' && !timeMajor) || (names === 'TNF' && timeMajor))) {
    throw new OnnxFormatError(`${where}: the output ${show(outName)} has axes [${names.split('').join(', ')}], which do not match the input's ${timeMajor ? 'time-major' : 'batch-first'} layout`);
  }
  return { chain: final.chain, imp, g, outName };
}

/**
 * Reads an ONNX model (bytes of a .onnx file) into an rnnkit Sequential: files written by exportOnnx
 * and the graphs torch.onnx.export writes for nn.RNN/nn.LSTM/nn.GRU (any num_layers, bidirectional,
 * batch_first or not) with nn.Linear and nn.Embedding around them. The model is batch-first; a
 * time-major graph (PyTorch batch_first=False) computes the same function of the transposed data.
 * Zero initial states (ConstantOfShape/Expand of 0) are accepted; sequence_lens becomes predict's
 * `lengths`; outputs other than the first (final states) are ignored. A graph whose recurrent
 * operator reads initial states from graph inputs (exportOnnx(layer, { initialStates: true }), or a
 * bare torch nn.LSTM exported with (h0, c0)) is accepted too: the Sequential then computes the graph
 * with zero initial_h/initial_c; use importOnnxLayer to feed those states.
 * Errors: OnnxFormatError naming `options.where` (default 'importOnnx'), the node and its operator
 * for malformed protobuf, missing initializers, shape mismatches, huge declared sizes, and
 * operators or patterns it does not recognise.
 */
export function importOnnx(bytes: Uint8Array, options: { where?: string } = {}): Sequential {
  checkOptions(options, 'importOnnx: options', ['where']);
  const where = options.where ?? 'importOnnx';
  const { chain, imp, g } = parseGraph(bytes, where);
  const layers = chain.map((spec, k) => {
    try {
      return buildLayer(spec);
    } catch (e) {
      throw new OnnxFormatError(`${where}: layer ${k} (${spec.t === 'rnn' ? spec.node : spec.t}): ${(e as Error).message}`);
    }
  });
  const model = new Sequential(layers, { name: g.name || 'onnx' });
  const firstSpec = chain[0];
  if (imp.inputKind === 'ids') model.build([null]);
  else {
    const F = imp.inputFeatures ?? (firstSpec.t === 'rnn' ? firstSpec.I : firstSpec.t === 'dense' ? firstSpec.I : null);
    if (F === null) throw new OnnxFormatError(`${where}: the input's feature size is unknown`);
    model.build(imp.inputKind === 'seq2' ? [F] : [null, F]);
  }
  return model;
}

/** Reads the ONNX file at `path` with importOnnx (errors name the file). */
export async function loadOnnx(path: string): Promise<Sequential> {
  if (typeof path !== 'string') throw new TypeError(`loadOnnx: path must be a string, got ${show(path)}`);
  const bytes = await readFile(path);
  return importOnnx(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length), { where: path });
}

/**
 * Reads an ONNX graph that is one recurrent layer into that layer: a SimpleRNN/LSTM/GRU stack
 * (numLayers, bidirectional) or a Bidirectional wrapper, as exportOnnx writes for a bare layer (with
 * or without sequence_lens, initial_h/initial_c inputs and h_n/c_n outputs), or torch.onnx.export of
 * a bare nn.RNN/nn.LSTM/nn.GRU. The layer is batch-first; returnSequences follows the graph's first
 * output and returnState is true when the graph has more than one output, so
 * `layer.forward(x, { initialState, lengths })` computes what the graph computes from (x,
 * sequence_lens, initial_h, initial_c) (states in rnnkit's layout: [numLayers·dirs, batch, units],
 * or [batch, units] for one row; a Bidirectional wrapper takes [h_fw, (c_fw,) h_bw, (c_bw)]).
 * Errors: importOnnx's, and an OnnxFormatError when the graph has anything besides one recurrent
 * layer (Embedding, Dense, several unlike recurrent operators).
 */
export function importOnnxLayer(bytes: Uint8Array, options: { where?: string } = {}): RecurrentBase {
  checkOptions(options, 'importOnnxLayer: options', ['where']);
  const where = options.where ?? 'importOnnxLayer';
  const { chain, imp, g } = parseGraph(bytes, where);
  const bad = chain.find((s) => s.t !== 'rnn');
  if (bad || imp.inputKind !== 'seq3') {
    throw new OnnxFormatError(`${where}: the graph is not one recurrent layer: it has ${chain.map((s) => (s.t === 'rnn' ? OP_OF[s.family] : s.t)).join(' → ')}${imp.inputKind !== 'seq3' ? ` on a ${imp.inputKind} input` : ''} (use importOnnx for a model)`);
  }
  const specs = chain as RnnSpec[];
  const s0 = specs[0];
  const returnState = g.output.length > 1;
  for (const [l, s] of specs.entries()) {
    const same = s.family === s0.family && s.H === s0.H && s.dirs === s0.dirs && s.clip === s0.clip && s.useBias === s0.useBias && s.peepholes === s0.peepholes
      && s.inputForget === s0.inputForget && s.linearBeforeReset === s0.linearBeforeReset && !s.reverse && s.merge === 'concat'
      && JSON.stringify(s.activations) === JSON.stringify(s0.activations) && (l === specs.length - 1 || s.returnSequences) && (l === 0 || s.I === s0.H * s0.dirs);
    if (specs.length > 1 && !same) throw new OnnxFormatError(`${where}: the graph is not one recurrent layer: operator ${s.node} does not stack on ${s0.node} as one ${OP_OF[s0.family]} layer`);
  }
  const last = specs[specs.length - 1];
  try {
    if (specs.length === 1 && (s0.dirs === 1 || s0.merge !== 'concat')) {
      const fw = makeRecurrent(s0, 0, { returnState });
      loadCell(fw, s0.weights[0], s0);
      if (s0.dirs === 1) return fw;
      const bw = makeRecurrent(s0, 1, { returnState });
      loadCell(bw, s0.weights[1], s0);
      return new Bidirectional(fw, { mergeMode: s0.merge, backwardLayer: bw });
    }
    const layer = makeRecurrent({ ...s0, returnSequences: last.returnSequences }, 0, { returnState, numLayers: specs.length, bidirectional: s0.dirs === 2 });
    const G = gateCount(s0.family);
    const dict: Record<string, Tensor> = {};
    specs.forEach((s, l) => {
      for (let d = 0; d < s.dirs; d++) {
        const sfx = `_l${l}${d === 1 ? '_reverse' : ''}`, w = s.weights[d];
        dict[`weight_ih${sfx}`] = Tensor.from(w.weightIh, [G * s.H, s.I]);
        dict[`weight_hh${sfx}`] = Tensor.from(w.weightHh, [G * s.H, s.H]);
        if (s.useBias) { dict[`bias_ih${sfx}`] = Tensor.from(w.biasIh!, [G * s.H]); dict[`bias_hh${sfx}`] = Tensor.from(w.biasHh!, [G * s.H]); }
        if (s.peepholes) dict[`weight_peephole${sfx}`] = Tensor.from(w.peephole!, [3 * s.H]);
      }
    });
    layer.loadStateDict(dict);
    return layer;
  } catch (e) {
    if (e instanceof OnnxFormatError) throw e;
    throw new OnnxFormatError(`${where}: ${s0.node}: ${(e as Error).message}`);
  }
}

/** Reads the ONNX file at `path` with importOnnxLayer (errors name the file). */
export async function loadOnnxLayer(path: string): Promise<RecurrentBase> {
  if (typeof path !== 'string') throw new TypeError(`loadOnnxLayer: path must be a string, got ${show(path)}`);
  const bytes = await readFile(path);
  return importOnnxLayer(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length), { where: path });
}
