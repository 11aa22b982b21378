/**
 * One-operator ONNX models for the ONNX `RNN`, `LSTM` and `GRU` operators, built with the
 * protobufjs-generated message classes of the `onnx-proto` package and run with
 * onnxruntime-node on the CPU execution provider.
 *
 * Used by the tests as the oracle for ONNX semantics and by the benchmark to time
 * onnxruntime on the same problem: {@link createRunner} creates the session once, and
 * {@link OnnxRunner.run} can then be called any number of times.
 *
 * W, R, B and P are graph initializers (so onnxruntime can prepack them, as in real
 * deployments); X and, when requested, initial_h / initial_c are graph inputs.
 * Shapes (time-major, layout 0):
 *   X [T, N, I]   Y [T, dirs, N, H]   Y_h, Y_c, initial_h, initial_c [dirs, N, H]
 * (N = batch size: `B` is the ONNX bias input, as in the operator's own signature.)
 */
import onnxProto from 'onnx-proto';
import type { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { onnxToTorch as layoutOnnxToTorch, torchToOnnx as layoutTorchToOnnx, type CellFamily, type TorchCellWeights } from '../../lib/io/layouts.js';

const proto = onnxProto.onnx;

/**
 * Opset of the default ONNX domain used for the models. The RNN/LSTM/GRU semantics are the
 * same in every opset from 14 (which added `layout`) to the latest (22 only added bfloat16).
 * Opset 15 / IR 8 is the newest pair described by the schema `onnx-proto` was generated from
 * (ONNX 1.10.2), so the model never claims an IR version newer than its message definitions.
 */
export const ONNX_OPSET = 15;
export const ONNX_IR_VERSION = 8;

export type OnnxCell = 'RNN' | 'LSTM' | 'GRU';
export type OnnxDirection = 'forward' | 'reverse' | 'bidirectional';

export interface OnnxRnnSpec {
  op: OnnxCell;
  /** Sequence length. */
  T: number;
  /** Batch size (named N because `B` is the ONNX bias input, below and in torchToOnnx's result). */
  N: number;
  /** Input size. */
  I: number;
  /** Hidden size. */
  H: number;
  /** Default 'forward'. */
  direction?: OnnxDirection;
  // Weights in ONNX layout, exactly as the operator takes them (dirs = 1 or 2):
  /** [dirs, G*H, I]; gate order LSTM i,o,f,c ; GRU z,r,h ; RNN single gate. */
  W: Float32Array;
  /** [dirs, G*H, H]. */
  R: Float32Array;
  /** [dirs, 2*G*H] (Wb then Rb). Omitted: zero biases. */
  B?: Float32Array;
  /** [dirs, 3*H], LSTM peepholes i,o,f. Omitted: no peepholes. */
  P?: Float32Array;
  /** Adds the graph input initial_h [dirs, N, H]. */
  withInitialH?: boolean;
  /** Adds the graph input initial_c [dirs, N, H] (LSTM only). */
  withInitialC?: boolean;
  /**
   * Passed through as the `activations` attribute: every function of a direction, for each direction
   * (e.g. 6 names for a bidirectional LSTM). onnxruntime's RNN kernel is case-sensitive ('Tanh').
   */
  activations?: string[];
  activationAlpha?: number[];
  activationBeta?: number[];
  clip?: number;
  /** LSTM `input_forget`. */
  inputForget?: boolean;
  /** GRU `linear_before_reset`. A PyTorch GRU corresponds to `true`. */
  linearBeforeReset?: boolean;
  /** Time-major only; when given, the `layout` attribute is written explicitly. */
  layout?: 0;
  /** intraOpNumThreads of the session (default 1). */
  threads?: number;
  /**
   * Runner only: every run writes Y into one tensor allocated once (onnxruntime's pre-allocated
   * outputs, `session.run(feeds, fetches)`), as a caller that reuses its output buffer would.
   */
  preallocatedY?: boolean;
}

export interface OnnxRunResult {
  /** [T, dirs, N, H] */
  Y: Float32Array;
  /** [dirs, N, H] */
  Y_h: Float32Array;
  /** [dirs, N, H], LSTM only. */
  Y_c?: Float32Array;
}

export interface OnnxRunner {
  /**
   * x: [T, N, I]; h0 / c0: [dirs, N, H], required exactly when the model was built with
   * withInitialH / withInitialC.
   */
  run(x: Float32Array, h0?: Float32Array, c0?: Float32Array): Promise<OnnxRunResult>;
  release(): Promise<void>;
}

/** Number of gates G of the operator. */
export function onnxGateCount(op: OnnxCell): number {
  switch (op) {
    case 'RNN':
      return 1;
    case 'GRU':
      return 3;
    case 'LSTM':
      return 4;
  }
}

export function onnxNumDirections(direction: OnnxDirection | undefined): 1 | 2 {
  return direction === 'bidirectional' ? 2 : 1;
}

function checkDim(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`OnnxRnnSpec.${name} must be a positive integer, got ${value}`);
  }
}

function checkLength(name: string, actual: number, dims: readonly number[]): void {
  const expected = dims.reduce((a, b) => a * b, 1);
  if (actual !== expected) {
    throw new RangeError(`${name} has ${actual} elements, expected ${expected} = [${dims.join(', ')}]`);
  }
}

/** Throws a descriptive error when the spec is inconsistent. */
export function validateSpec(spec: OnnxRnnSpec): void {
  const { op, T, N, I, H } = spec;
  if (op !== 'RNN' && op !== 'LSTM' && op !== 'GRU') throw new RangeError(`unknown op ${String(op)}`);
  checkDim('T', T);
  checkDim('N', N);
  checkDim('I', I);
  checkDim('H', H);
  const dirs = onnxNumDirections(spec.direction);
  const G = onnxGateCount(op);
  checkLength('W', spec.W.length, [dirs, G * H, I]);
  checkLength('R', spec.R.length, [dirs, G * H, H]);
  if (spec.B !== undefined) checkLength('B', spec.B.length, [dirs, 2 * G * H]);
  if (spec.P !== undefined) {
    if (op !== 'LSTM') throw new RangeError('P (peepholes) is only valid for LSTM');
    checkLength('P', spec.P.length, [dirs, 3 * H]);
  }
  if (spec.withInitialC === true && op !== 'LSTM') throw new RangeError('withInitialC is only valid for LSTM');
  if (spec.inputForget !== undefined && op !== 'LSTM') throw new RangeError('inputForget is only valid for LSTM');
  if (spec.linearBeforeReset !== undefined && op !== 'GRU') {
    throw new RangeError('linearBeforeReset is only valid for GRU');
  }
  if (spec.layout !== undefined && spec.layout !== 0) throw new RangeError('only layout 0 (time-major) is supported');
  if (spec.threads !== undefined) checkDim('threads', spec.threads);
}

// ---------------------------------------------------------------------------------------------
// Model building

const FLOAT = proto.TensorProto.DataType.FLOAT;
const AttrType = proto.AttributeProto.AttributeType;
const utf8 = new TextEncoder();

function floatInitializer(name: string, dims: readonly number[], data: Float32Array): onnx.ITensorProto {
  // raw_data is little-endian by definition of the format, whatever the host byte order.
  const raw = new Uint8Array(data.length * 4);
  const view = new DataView(raw.buffer);
  for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i], true);
  return { name, dataType: FLOAT, dims: [...dims], rawData: raw };
}

function floatValueInfo(name: string, dims: readonly number[]): onnx.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => ({ dimValue: d })) } } },
  };
}

function intAttr(name: string, i: number): onnx.IAttributeProto {
  return { name, type: AttrType.INT, i };
}
function floatAttr(name: string, f: number): onnx.IAttributeProto {
  return { name, type: AttrType.FLOAT, f };
}
function floatsAttr(name: string, floats: readonly number[]): onnx.IAttributeProto {
  return { name, type: AttrType.FLOATS, floats: [...floats] };
}
function stringAttr(name: string, s: string): onnx.IAttributeProto {
  return { name, type: AttrType.STRING, s: utf8.encode(s) };
}
function stringsAttr(name: string, strings: readonly string[]): onnx.IAttributeProto {
  return { name, type: AttrType.STRINGS, strings: strings.map((s) => utf8.encode(s)) };
}

/** Serialized ModelProto bytes of a graph holding the single RNN/LSTM/GRU node of `spec`. */
export function buildRnnModel(spec: OnnxRnnSpec): Uint8Array {
  validateSpec(spec);
  const { op, T, N, I, H } = spec;
  const direction = spec.direction ?? 'forward';
  const dirs = onnxNumDirections(direction);
  const G = onnxGateCount(op);
  const isLstm = op === 'LSTM';

  const initializer: onnx.ITensorProto[] = [
    floatInitializer('W', [dirs, G * H, I], spec.W),
    floatInitializer('R', [dirs, G * H, H], spec.R),
  ];
  if (spec.B !== undefined) initializer.push(floatInitializer('B', [dirs, 2 * G * H], spec.B));
  if (spec.P !== undefined) initializer.push(floatInitializer('P', [dirs, 3 * H], spec.P));

  const input: onnx.IValueInfoProto[] = [floatValueInfo('X', [T, N, I])];
  if (spec.withInitialH === true) input.push(floatValueInfo('initial_h', [dirs, N, H]));
  if (spec.withInitialC === true) input.push(floatValueInfo('initial_c', [dirs, N, H]));

  const output: onnx.IValueInfoProto[] = [
    floatValueInfo('Y', [T, dirs, N, H]),
    floatValueInfo('Y_h', [dirs, N, H]),
  ];
  if (isLstm) output.push(floatValueInfo('Y_c', [dirs, N, H]));

  // Operator inputs: X, W, R, B, sequence_lens, initial_h[, initial_c, P (LSTM)];
  // an omitted optional input is the empty name, trailing ones are dropped.
  const nodeInputs: string[] = [
    'X',
    'W',
    'R',
    spec.B !== undefined ? 'B' : '',
    '', // sequence_lens: every sequence has the full length T
    spec.withInitialH === true ? 'initial_h' : '',
  ];
  if (isLstm) {
    nodeInputs.push(spec.withInitialC === true ? 'initial_c' : '', spec.P !== undefined ? 'P' : '');
  }
  while (nodeInputs.length > 0 && nodeInputs[nodeInputs.length - 1] === '') nodeInputs.pop();

  const attribute: onnx.IAttributeProto[] = [intAttr('hidden_size', H), stringAttr('direction', direction)];
  if (spec.activations !== undefined) attribute.push(stringsAttr('activations', spec.activations));
  if (spec.activationAlpha !== undefined) attribute.push(floatsAttr('activation_alpha', spec.activationAlpha));
  if (spec.activationBeta !== undefined) attribute.push(floatsAttr('activation_beta', spec.activationBeta));
  if (spec.clip !== undefined) attribute.push(floatAttr('clip', spec.clip));
  if (spec.inputForget !== undefined) attribute.push(intAttr('input_forget', spec.inputForget ? 1 : 0));
  if (spec.linearBeforeReset !== undefined) {
    attribute.push(intAttr('linear_before_reset', spec.linearBeforeReset ? 1 : 0));
  }
  if (spec.layout !== undefined) attribute.push(intAttr('layout', spec.layout));

  const node: onnx.INodeProto = {
    name: `${op.toLowerCase()}_0`,
    opType: op,
    domain: '',
    input: nodeInputs,
    output: isLstm ? ['Y', 'Y_h', 'Y_c'] : ['Y', 'Y_h'],
    attribute,
  };

  const model: onnx.IModelProto = {
    irVersion: ONNX_IR_VERSION,
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    producerName: 'rnnkit-test',
    graph: { name: `${op}_${direction}`, node: [node], initializer, input, output },
  };
  const problem = proto.ModelProto.verify(model);
  if (problem !== null) throw new Error(`invalid ModelProto: ${problem}`);
  return proto.ModelProto.encode(model).finish();
}

// ---------------------------------------------------------------------------------------------
// Running

function floatOutput(outputs: ort.InferenceSession.OnnxValueMapType, name: string): Float32Array {
  const value = outputs[name];
  if (value === undefined || value.type !== 'float32' || !(value.data instanceof Float32Array)) {
    throw new Error(`onnxruntime output ${name} is missing or not a float32 tensor`);
  }
  return value.data;
}

/** An onnxruntime InferenceSession over `buildRnnModel(spec)`, created once, run many times. */
export async function createRunner(spec: OnnxRnnSpec): Promise<OnnxRunner> {
  const bytes = buildRnnModel(spec);
  const session = await ort.InferenceSession.create(bytes, {
    executionProviders: ['cpu'],
    intraOpNumThreads: spec.threads ?? 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });

  const { T, N, I, H } = spec;
  const dirs = onnxNumDirections(spec.direction);
  const withH = spec.withInitialH === true;
  const withC = spec.withInitialC === true;
  const isLstm = spec.op === 'LSTM';
  let released = false;
  const Yfetch = spec.preallocatedY ? new ort.Tensor('float32', new Float32Array(T * dirs * N * H), [T, dirs, N, H]) : undefined;

  return {
    async run(x: Float32Array, h0?: Float32Array, c0?: Float32Array): Promise<OnnxRunResult> {
      if (released) throw new Error('OnnxRunner.run called after release()');
      checkLength('x', x.length, [T, N, I]);
      const feeds: Record<string, ort.Tensor> = { X: new ort.Tensor('float32', x, [T, N, I]) };
      if (withH !== (h0 !== undefined)) {
        throw new Error(`h0 must be given exactly when the model has initial_h (withInitialH: ${withH})`);
      }
      if (withC !== (c0 !== undefined)) {
        throw new Error(`c0 must be given exactly when the model has initial_c (withInitialC: ${withC})`);
      }
      if (h0 !== undefined) {
        checkLength('h0', h0.length, [dirs, N, H]);
        feeds['initial_h'] = new ort.Tensor('float32', h0, [dirs, N, H]);
      }
      if (c0 !== undefined) {
        checkLength('c0', c0.length, [dirs, N, H]);
        feeds['initial_c'] = new ort.Tensor('float32', c0, [dirs, N, H]);
      }
      const outputs = Yfetch ? await session.run(feeds, { Y: Yfetch, Y_h: null, ...(isLstm && { Y_c: null }) }) : await session.run(feeds);
      const result: OnnxRunResult = { Y: floatOutput(outputs, 'Y'), Y_h: floatOutput(outputs, 'Y_h') };
      if (isLstm) result.Y_c = floatOutput(outputs, 'Y_c');
      return result;
    },
    async release(): Promise<void> {
      if (released) return;
      released = true;
      await session.release();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// PyTorch <-> ONNX weight layout (one direction)

/** PyTorch weights of one direction of one layer (the library's own layout). */
export interface TorchRnnWeights {
  /** [G*H, I], gate order LSTM i,f,g,o ; GRU r,z,n */
  weight_ih: Float32Array;
  /** [G*H, H] */
  weight_hh: Float32Array;
  /** [G*H] */
  bias_ih?: Float32Array;
  /** [G*H] */
  bias_hh?: Float32Array;
}

/** The layouts.ts family of an ONNX operator. */
const FAMILY: Record<OnnxCell, CellFamily> = { RNN: 'rnn', LSTM: 'lstm', GRU: 'gru' };

/**
 * PyTorch layout -> ONNX layout for one direction: W [G*H, I], R [G*H, H], B [2*G*H] (Wb then Rb;
 * zeros for a missing PyTorch bias). For bidirectional, concatenate the per-direction results.
 * Note that a PyTorch GRU computes ONNX GRU with linear_before_reset = 1. The conversion itself is
 * lib/io/layouts.ts's torchToOnnx (the one table of gate orders); this wrapper keeps the tests'
 * snake_case names and always returns B.
 */
export function torchToOnnx(
  op: OnnxCell,
  H: number,
  w: TorchRnnWeights,
): { W: Float32Array; R: Float32Array; B: Float32Array } {
  const G = onnxGateCount(op);
  const rows = G * H;
  if (w.weight_ih.length % rows !== 0 || w.weight_ih.length === 0) {
    throw new RangeError(`weight_ih has ${w.weight_ih.length} elements, not a positive multiple of G*H = ${rows}`);
  }
  checkLength('weight_hh', w.weight_hh.length, [rows, H]);
  if (w.bias_ih !== undefined) checkLength('bias_ih', w.bias_ih.length, [rows]);
  if (w.bias_hh !== undefined) checkLength('bias_hh', w.bias_hh.length, [rows]);
  const torch: TorchCellWeights<Float32Array> = { weightIh: w.weight_ih, weightHh: w.weight_hh };
  if (w.bias_ih !== undefined) torch.biasIh = w.bias_ih;
  if (w.bias_hh !== undefined) torch.biasHh = w.bias_hh;
  const out = layoutTorchToOnnx(FAMILY[op], H, torch);
  return { W: out.W, R: out.R, B: out.B ?? new Float32Array(2 * rows) };
}

/** Inverse of {@link torchToOnnx} for one direction (B [2*G*H] is split into bias_ih, bias_hh), through lib/io/layouts.ts. */
export function onnxToTorch(
  op: OnnxCell,
  H: number,
  w: { W: Float32Array; R: Float32Array; B?: Float32Array },
): Required<TorchRnnWeights> {
  const G = onnxGateCount(op);
  const rows = G * H;
  if (w.W.length % rows !== 0 || w.W.length === 0) {
    throw new RangeError(`W has ${w.W.length} elements, not a positive multiple of G*H = ${rows}`);
  }
  checkLength('R', w.R.length, [rows, H]);
  const bias = w.B ?? new Float32Array(2 * rows);
  checkLength('B', bias.length, [2 * rows]);
  const t = layoutOnnxToTorch(FAMILY[op], H, { W: w.W, R: w.R, B: bias });
  return { weight_ih: t.weightIh, weight_hh: t.weightHh, bias_ih: t.biasIh!, bias_hh: t.biasHh! };
}
