// Weight layouts of the systems rnnkit exchanges weights with, and every conversion between them,
// driven by one table (../shared/DESIGN.md §5). rnnkit stores PyTorch's layout, so PyTorch is the
// hub: every conversion goes rnnkit/PyTorch ↔ Keras/tfjs or rnnkit/PyTorch ↔ ONNX, one direction of
// one layer at a time. Conversions are exact copies of the numbers (no arithmetic), except folding
// PyTorch's two biases into Keras's one, which is a single float add per element.
//
//   system   input weights     recurrent weights  biases                 gate blocks
//   torch    weight_ih [G·H,I] weight_hh [G·H,P]  bias_ih, bias_hh [G·H] LSTM i f g o · GRU r z n
//   keras    kernel [I,G·H]    recurrent_kernel   bias [G·H]; GRU with   LSTM i f c o · GRU z r h
//                              [H,G·H]            reset_after [2,G·H]
//   onnx     W [D,G·H,I]       R [D,G·H,H]        B [D,2·G·H] (Wb, Rb)   LSTM i o f c · GRU z r h
//                                                  P [D,3H] peepholes     (peepholes i o f)
//
// Peepholes in rnnkit (weight_peephole [3H]) are ordered i, f, o; ONNX orders them i, o, f.
import type { Recurrent } from '../layers/recurrent.js';
import type { NativeActivation } from '../activations.js';

export type CellFamily = 'rnn' | 'lstm' | 'gru';
export type WeightFormat = 'torch' | 'keras' | 'onnx';
type Float = Float32Array | Float64Array;

/** The table: gate names of each family in each format's block order ('torch' is rnnkit's). */
export const GATE_ORDERS: Readonly<Record<CellFamily, Readonly<Record<WeightFormat, readonly string[]>>>> = {
  rnn: { torch: ['h'], keras: ['h'], onnx: ['h'] },
  lstm: { torch: ['i', 'f', 'g', 'o'], keras: ['i', 'f', 'g', 'o'], onnx: ['i', 'o', 'f', 'g'] },
  gru: { torch: ['r', 'z', 'n'], keras: ['z', 'r', 'n'], onnx: ['z', 'r', 'n'] },
};
/** Peephole vectors (LSTM): rnnkit's and ONNX's order of the three H-blocks. */
export const PEEPHOLE_ORDERS: Readonly<Record<'torch' | 'onnx', readonly string[]>> = { torch: ['i', 'f', 'o'], onnx: ['i', 'o', 'f'] };

export function gateCount(family: CellFamily): number {
  return GATE_ORDERS[family].torch.length;
}

/** perm[k] = the block of `from` that becomes block k of `to`. */
export function blockPermutation(fromOrder: readonly string[], toOrder: readonly string[]): number[] {
  return toOrder.map((g) => fromOrder.indexOf(g));
}
export function gatePermutation(family: CellFamily, from: WeightFormat, to: WeightFormat): number[] {
  return blockPermutation(GATE_ORDERS[family][from], GATE_ORDERS[family][to]);
}

function like<A extends Float>(src: A, n: number): A {
  return (src instanceof Float64Array ? new Float64Array(n) : new Float32Array(n)) as A;
}

/** Reorders the blocks of `blockSize` consecutive elements: out block k = src block perm[k]. */
export function permuteBlocks<A extends Float>(src: A, perm: readonly number[], blockSize: number): A {
  if (src.length !== perm.length * blockSize) {
    throw new RangeError(`permuteBlocks: expected ${perm.length} blocks of ${blockSize} elements (${perm.length * blockSize}), got ${src.length}`);
  }
  const out = like(src, src.length);
  perm.forEach((from, to) => out.set(src.subarray(from * blockSize, (from + 1) * blockSize), to * blockSize));
  return out;
}

/** [rows, cols] row-major → [cols, rows]. */
export function transpose<A extends Float>(src: A, rows: number, cols: number): A {
  if (src.length !== rows * cols) throw new RangeError(`transpose: expected ${rows}×${cols} = ${rows * cols} elements, got ${src.length}`);
  const out = like(src, src.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = src[i * cols + j];
  return out;
}

/** One direction of one layer in rnnkit's (PyTorch's) layout. */
export interface TorchCellWeights<A extends Float = Float> {
  /** [G·H, I] */ weightIh: A;
  /** [G·H, P] (P = projSize or H) */ weightHh: A;
  /** [G·H] */ biasIh?: A;
  /** [G·H] */ biasHh?: A;
  /** LSTM peepholes [3H] (i, f, o). */ peephole?: A;
  /** LSTM projection [P, H]. */ weightHr?: A;
}

/** One direction of one layer in Keras's layout (layer.get_weights() order: kernel, recurrent_kernel, bias). */
export interface KerasCellWeights<A extends Float = Float> {
  /** [I, G·H] */ kernel: A;
  /** [H, G·H] */ recurrentKernel: A;
  /** [G·H], or [2, G·H] (input bias row, then recurrent bias row) for a GRU with reset_after. */ bias?: A;
}

/** One direction of one layer in ONNX's layout (the caller stacks directions on the leading axis). */
export interface OnnxCellWeights<A extends Float = Float> {
  /** [G·H, I] */ W: A;
  /** [G·H, H] */ R: A;
  /** [2·G·H]: Wb then Rb */ B?: A;
  /** LSTM peepholes [3H] (i, o, f). */ P?: A;
}

/** A feature of an rnnkit layer that a format cannot express; thrown at export, never written wrong. */
export class UnsupportedFeatureError extends Error {
  constructor(readonly format: string, readonly feature: string, detail = '') {
    super(`${format} cannot express ${feature}${detail ? ` (${detail})` : ''}`);
    this.name = 'UnsupportedFeatureError';
  }
}

function checkLen(what: string, a: Float | undefined, n: number, shape: string): void {
  if (a !== undefined && a.length !== n) throw new RangeError(`${what}: expected ${shape} = ${n} elements, got ${a.length}`);
}

/** Dimensions of a layer-direction from its rnnkit weights: G·H rows, I inputs, P recurrent columns. */
function torchDims(family: CellFamily, H: number, w: TorchCellWeights): { G: number; I: number; P: number } {
  const G = gateCount(family), rows = G * H;
  if (w.weightIh.length === 0 || w.weightIh.length % rows !== 0) throw new RangeError(`weight_ih: ${w.weightIh.length} elements, not a positive multiple of ${G}·${H}`);
  const I = w.weightIh.length / rows;
  const P = w.weightHr ? w.weightHr.length / H : H;
  checkLen('weight_hh', w.weightHh, rows * P, `[${rows}, ${P}]`);
  checkLen('bias_ih', w.biasIh, rows, `[${rows}]`);
  checkLen('bias_hh', w.biasHh, rows, `[${rows}]`);
  checkLen('weight_peephole', w.peephole, 3 * H, `[${3 * H}]`);
  return { G, I, P };
}

/**
 * rnnkit → Keras for one layer-direction. Keras has one bias (b_ih + b_hh) except a GRU with
 * reset_after, which keeps both as the rows of a [2, 3H] bias. Peepholes and projections have no
 * Keras form (UnsupportedFeatureError).
 */
export function torchToKeras<A extends Float>(family: CellFamily, H: number, w: TorchCellWeights<A>, opts: { resetAfter?: boolean } = {}): KerasCellWeights<A> {
  if (w.peephole) throw new UnsupportedFeatureError('Keras/tfjs', 'peepholes');
  if (w.weightHr) throw new UnsupportedFeatureError('Keras/tfjs', 'a projection (projSize)');
  const { G, I } = torchDims(family, H, w);
  const perm = gatePermutation(family, 'torch', 'keras');
  const toKeras = (m: A, cols: number): A => transpose(permuteBlocks(m, perm, H * cols), G * H, cols);
  const out: KerasCellWeights<A> = { kernel: toKeras(w.weightIh, I), recurrentKernel: toKeras(w.weightHh, H) };
  if (w.biasIh || w.biasHh) {
    const zero = like(w.weightIh, G * H);
    const bih = permuteBlocks(w.biasIh ?? zero, perm, H), bhh = permuteBlocks(w.biasHh ?? zero, perm, H);
    if (family === 'gru' && opts.resetAfter) {
      const b = like(w.weightIh, 2 * G * H);
      b.set(bih, 0);
      b.set(bhh, G * H);
      out.bias = b;
    } else {
      out.bias = bih.map((v, k) => v + bhh[k]) as A;
    }
  }
  return out;
}

/** Keras → rnnkit for one layer-direction (a single Keras bias becomes bias_ih, with bias_hh zero). */
export function kerasToTorch<A extends Float>(family: CellFamily, H: number, w: KerasCellWeights<A>, opts: { resetAfter?: boolean } = {}): TorchCellWeights<A> {
  const G = gateCount(family), rows = G * H;
  if (w.kernel.length === 0 || w.kernel.length % rows !== 0) throw new RangeError(`kernel: ${w.kernel.length} elements, not a positive multiple of ${G}·${H}`);
  const I = w.kernel.length / rows;
  checkLen('recurrent_kernel', w.recurrentKernel, H * rows, `[${H}, ${rows}]`);
  const two = family === 'gru' && opts.resetAfter;
  checkLen('bias', w.bias, two ? 2 * rows : rows, two ? `[2, ${rows}]` : `[${rows}]`);
  const perm = gatePermutation(family, 'keras', 'torch');
  const toTorch = (m: A, cols: number): A => permuteBlocks(transpose(m, cols, rows), perm, H * cols);
  const out: TorchCellWeights<A> = { weightIh: toTorch(w.kernel, I), weightHh: toTorch(w.recurrentKernel, H) };
  if (w.bias) {
    out.biasIh = permuteBlocks(w.bias.subarray(0, rows) as A, perm, H);
    out.biasHh = two ? permuteBlocks(w.bias.subarray(rows) as A, perm, H) : like(w.bias, rows);
  }
  return out;
}

/** rnnkit → ONNX for one layer-direction; a missing bias is written as zeros only when `withBias`. */
export function torchToOnnx<A extends Float>(family: CellFamily, H: number, w: TorchCellWeights<A>): OnnxCellWeights<A> {
  if (w.weightHr) throw new UnsupportedFeatureError('ONNX', 'a projection (projSize)');
  const { G, I } = torchDims(family, H, w);
  const perm = gatePermutation(family, 'torch', 'onnx');
  const out: OnnxCellWeights<A> = { W: permuteBlocks(w.weightIh, perm, H * I), R: permuteBlocks(w.weightHh, perm, H * H) };
  if (w.biasIh || w.biasHh) {
    const B = like(w.weightIh, 2 * G * H);
    if (w.biasIh) B.set(permuteBlocks(w.biasIh, perm, H), 0);
    if (w.biasHh) B.set(permuteBlocks(w.biasHh, perm, H), G * H);
    out.B = B;
  }
  if (w.peephole) out.P = permuteBlocks(w.peephole, blockPermutation(PEEPHOLE_ORDERS.torch, PEEPHOLE_ORDERS.onnx), H);
  return out;
}

/** ONNX → rnnkit for one layer-direction. */
export function onnxToTorch<A extends Float>(family: CellFamily, H: number, w: OnnxCellWeights<A>): TorchCellWeights<A> {
  const G = gateCount(family), rows = G * H;
  if (w.W.length === 0 || w.W.length % rows !== 0) throw new RangeError(`W: ${w.W.length} elements, not a positive multiple of ${G}·${H}`);
  const I = w.W.length / rows;
  checkLen('R', w.R, rows * H, `[${rows}, ${H}]`);
  checkLen('B', w.B, 2 * rows, `[${2 * rows}]`);
  checkLen('P', w.P, 3 * H, `[${3 * H}]`);
  const perm = gatePermutation(family, 'onnx', 'torch');
  const out: TorchCellWeights<A> = { weightIh: permuteBlocks(w.W, perm, H * I), weightHh: permuteBlocks(w.R, perm, H * H) };
  if (w.B) {
    out.biasIh = permuteBlocks(w.B.subarray(0, rows) as A, perm, H);
    out.biasHh = permuteBlocks(w.B.subarray(rows) as A, perm, H);
  }
  if (w.P) out.peephole = permuteBlocks(w.P, blockPermutation(PEEPHOLE_ORDERS.onnx, PEEPHOLE_ORDERS.torch), H);
  return out;
}

// ---------------------------------------------------------------------------------------------
// What each format can express

/** What an rnnkit recurrent layer is, in the terms the formats care about. */
export interface RecurrentFeatures {
  family: CellFamily;
  units: number;
  inputSize: number;
  /** projSize, or units. */
  outputSize: number;
  numLayers: number;
  bidirectional: boolean;
  goBackwards: boolean;
  useBias: boolean;
  /** ONNX clip (0 = off). */
  clip: number;
  /** GRU: linear before reset (PyTorch, Keras reset_after). */
  linearBeforeReset: boolean;
  gateActivation?: NativeActivation;
  candidateActivation?: NativeActivation;
  outputActivation?: NativeActivation;
  peepholes: boolean;
  noInputGate: boolean;
  noForgetGate: boolean;
  noOutputGate: boolean;
  coupledInputForget: boolean;
  fullGateRecurrence: boolean;
  cellClip: number;
  projSize: number;
  projClip: number;
  cellBlockSize: number;
}

const same = (a: NativeActivation | undefined, name: string, alpha = 0, beta = 0): boolean =>
  a === undefined || (a.name === name && (a.alpha === alpha || name === 'Sigmoid' || name === 'Tanh' || name === 'Relu') && (a.beta === beta || name === 'Sigmoid' || name === 'Tanh' || name === 'Relu'));

/** Keras activation names of the native (ONNX) activations Keras/tfjs have. */
export const KERAS_ACTIVATIONS: Readonly<Record<string, string>> = {
  Sigmoid: 'sigmoid', Tanh: 'tanh', Relu: 'relu', HardSigmoid: 'hard_sigmoid', Affine: 'linear', Elu: 'elu', Softsign: 'softsign', Softplus: 'softplus',
};
function kerasActivation(a: NativeActivation | undefined): string | undefined {
  if (!a) return undefined;
  const k = KERAS_ACTIVATIONS[a.name];
  if (!k) return undefined;
  if (a.name === 'HardSigmoid' && (a.alpha !== 0.2 || a.beta !== 0.5)) return undefined;
  if (a.name === 'Affine' && (a.alpha !== 1 || a.beta !== 0)) return undefined;
  if (a.name === 'Elu' && a.alpha !== 1) return undefined;
  return k;
}

interface Limit {
  feature: string;
  blocks: (f: RecurrentFeatures) => boolean;
}

const LSTM_ONLY_LIMITS = (format: string): Limit[] => [
  { feature: 'NIG (no input gate, inputGate: false)', blocks: (f) => f.noInputGate },
  { feature: 'NFG (no forget gate, forgetGate: false)', blocks: (f) => f.noForgetGate },
  { feature: 'NOG (no output gate, outputGate: false)', blocks: (f) => f.noOutputGate },
  { feature: 'FGR (fullGateRecurrence)', blocks: (f) => f.fullGateRecurrence },
  { feature: 'cell blocks (cellBlockSize > 1)', blocks: (f) => f.cellBlockSize > 1 },
  { feature: 'cellClip', blocks: (f) => f.cellClip > 0 },
  { feature: 'projClip', blocks: (f) => f.projClip > 0 },
  ...(format === 'onnx' ? [{ feature: 'a projection (projSize)', blocks: (f: RecurrentFeatures) => f.projSize > 0 }] : []),
];

/** The table of what each format cannot express (in the order they are reported). */
export const FORMAT_LIMITS: Readonly<Record<WeightFormat, readonly Limit[]>> = {
  torch: [
    ...LSTM_ONLY_LIMITS('torch'),
    { feature: 'peepholes', blocks: (f) => f.peepholes },
    { feature: 'CIFG (coupledInputForget)', blocks: (f) => f.coupledInputForget },
    { feature: 'clip', blocks: (f) => f.clip > 0 },
    { feature: 'a reset-before GRU (resetAfter: false)', blocks: (f) => f.family === 'gru' && !f.linearBeforeReset },
    { feature: 'goBackwards', blocks: (f) => f.goBackwards },
    {
      feature: 'activations other than PyTorch\'s (sigmoid gates, tanh; tanh or relu for an RNN)',
      blocks: (f) => f.family === 'rnn'
        ? !(same(f.candidateActivation, 'Tanh') || same(f.candidateActivation, 'Relu'))
        : !same(f.gateActivation, 'Sigmoid') || !same(f.candidateActivation, 'Tanh') || !same(f.outputActivation, 'Tanh'),
    },
  ],
  keras: [
    ...LSTM_ONLY_LIMITS('keras'),
    { feature: 'peepholes', blocks: (f) => f.peepholes },
    { feature: 'a projection (projSize)', blocks: (f) => f.projSize > 0 },
    { feature: 'CIFG (coupledInputForget)', blocks: (f) => f.coupledInputForget },
    { feature: 'clip', blocks: (f) => f.clip > 0 },
    {
      feature: 'activations outside Keras\'s set (sigmoid, hard_sigmoid, tanh, relu, linear, elu, softsign, softplus)',
      blocks: (f) => [f.gateActivation, f.candidateActivation, f.outputActivation].some((a) => a !== undefined && kerasActivation(a) === undefined),
    },
    {
      feature: 'different block-input and output activations (NIAF/NOAF: Keras has one `activation`)',
      blocks: (f) => f.family === 'lstm' && f.candidateActivation !== undefined && f.outputActivation !== undefined &&
        (f.candidateActivation.name !== f.outputActivation.name || f.candidateActivation.alpha !== f.outputActivation.alpha || f.candidateActivation.beta !== f.outputActivation.beta),
    },
  ],
  onnx: [...LSTM_ONLY_LIMITS('onnx')],
};

/** The features of a layer that `format` cannot express (empty: it can be written exactly). */
export function unsupportedFeatures(f: RecurrentFeatures, format: WeightFormat): string[] {
  return FORMAT_LIMITS[format].filter((l) => l.blocks(f)).map((l) => l.feature);
}

/** Throws an UnsupportedFeatureError naming the first feature `format` cannot express. */
export function assertExpressible(f: RecurrentFeatures, format: WeightFormat, formatName: string, where: string): void {
  const missing = unsupportedFeatures(f, format);
  if (missing.length > 0) throw new UnsupportedFeatureError(formatName, missing.join(', '), where);
}

/** The Keras name of an activation of the layer, or undefined when Keras has none. */
export { kerasActivation };

/** The features of an rnnkit recurrent layer. */
export function recurrentFeatures(layer: Recurrent): RecurrentFeatures {
  return layer.features();
}
