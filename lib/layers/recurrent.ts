// Recurrent layers over whole sequences: SimpleRNN, LSTM and GRU, each optionally a deep and
// bidirectional stack (PyTorch's numLayers/bidirectional and parameter names). Batch-first at the
// API (like tfjs/Keras), time-major inside; one native call per forward or backward (base.ts).
import { native, NATIVE_NUMBER_LIMIT, type CellParamName, type NativeArray, type NativeCell, type NativeCellOptions, type NativeCellSpec, type NativeCellWeights } from '../native.js';
import { resolveActivation, type ActivationSpec, type NativeActivation } from '../activations.js';
import type { RecurrentFeatures } from '../io/layouts.js';
import {
  bufferProblem, checkElementCount, describeBufferProblem, elementCount, formatShape, newTypedArray, shapeSize, Tensor, type DType, type TensorData,
} from '../tensor.js';
import { checkInitializer, initialize, Random, type Initializer } from '../init.js';
import { loadParameters, trackParameters, WeightVersion, type LoadStateDictOptions } from '../params.js';
import { checkOptions, dimension, dtypeOption, flag, numberIn, optionNames, seedOption, show, type OptionTable } from '../options.js';
import { RecurrentBase, type DropoutConfig, type StackDef, type StateStyle } from './base.js';

export type { ForwardOptions, ForwardResult, BackwardOptions, Gradients, TrainingRun } from './base.js';

/** PyTorch's state_dict stem of each native parameter (the native table, cells/cell_params.h). */
const TORCH_NAME = new Map(native.cellParameters().map((p) => [p.name, p.torch]));
/** The parameters that are neither gate-row weights nor biases: stored and passed as they are. */
const PLAIN_PARAMETERS: readonly CellParamName[] = ['peephole', 'weightHr', 'weightGr'];

export interface RecurrentOptions {
  /**
   * Features per step of the input. Optional inside a Sequential (taken from the previous layer);
   * a layer made without it is built by build(inputSize) or its model.
   */
  inputSize?: number;
  /** Hidden units (the size of h). */
  units: number;
  /** Return the whole output sequence [batch, steps, width] instead of the last output [batch, width]. */
  returnSequences?: boolean;
  /** Also return the final states ([h] or [h, c]; see ForwardOptions.initialState for stacks). */
  returnState?: boolean;
  /** Process the sequence in reverse; with returnSequences the outputs come in reversed order (Keras). */
  goBackwards?: boolean;
  /** Whether the layer has biases (default true). */
  useBias?: boolean;
  /** Scalar type of parameters and data (default 'float32'; 'float64' exists for exact checks). */
  dtype?: DType;
  /** Seed for the initial weights and the dropout masks: a safe integer (used modulo 2^32); default a random one. */
  seed?: number;
  /** Input weights W_ih (per gate block); default 'glorotUniform' (Keras). */
  kernelInitializer?: Initializer;
  /** Recurrent weights W_hh (per gate block); default 'orthogonal' (Keras); 'identity' makes an IRNN. */
  recurrentInitializer?: Initializer;
  /** Biases; default 'zeros' (an LSTM then sets its forget bias to 1 unless unitForgetBias is false). */
  biasInitializer?: Initializer;
  /**
   * ONNX `clip`: clamp every gate pre-activation (LSTM's block input and peephole terms included) to
   * [−clip, clip] before its activation. Default: no clipping.
   */
  clip?: number;
  /** Stacked layers (PyTorch num_layers; default 1): layer k > 0 reads layer k−1's output. */
  numLayers?: number;
  /** Two directions per layer, outputs concatenated (PyTorch bidirectional; default false). */
  bidirectional?: boolean;
  /**
   * Fraction dropped in training. With numLayers 1: from the layer's input, one mask per sequence for
   * all steps (Keras `dropout`). With numLayers > 1: from each layer's output except the last's
   * (PyTorch `dropout`). Default 0.
   */
  dropout?: number;
  /**
   * Fraction of h_{t−1} dropped before the recurrence in training, one mask per sequence for all
   * steps, h0 included (Keras `recurrent_dropout`; a GRU drops the whole state, as TF1's
   * DropoutWrapper does, not only the recurrent product as Keras's GRU). Default 0.
   */
  recurrentDropout?: number;
  /**
   * Keras `stateful`: each forward starts from the final states of the previous one (detached) until
   * resetStates(); the batch size must stay the same. Default false.
   */
  stateful?: boolean;
}

type ParamName = string;

/** clip, cellClip, projClip: 0 (off) when undefined, else a number in the native core's [0, 1e30]. */
function clipOption(v: unknown, what: string): number {
  return v === undefined ? 0 : numberIn(v, what, 0, NATIVE_NUMBER_LIMIT, ' (0 = off)');
}

/** A dropout fraction in [0, 1). */
function fraction(v: unknown, what: string): number {
  if (v === undefined) return 0;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v >= 1) {
    throw new RangeError(`${what}: expected a fraction in [0, 1), got ${show(v)}`);
  }
  return v;
}

const RECURRENT_OPTIONS: OptionTable<RecurrentOptions> = {
  inputSize: true, units: true, returnSequences: true, returnState: true, goBackwards: true, useBias: true, dtype: true, seed: true,
  kernelInitializer: true, recurrentInitializer: true, biasInitializer: true, clip: true, numLayers: true, bidirectional: true,
  dropout: true, recurrentDropout: true, stateful: true,
};
const SIMPLE_RNN_OPTIONS = optionNames<SimpleRNNOptions>({ ...RECURRENT_OPTIONS, activation: true });
const LSTM_OPTIONS = optionNames<LSTMOptions>({
  ...RECURRENT_OPTIONS, unitForgetBias: true, recurrentActivation: true, activation: true, candidateActivation: true, outputActivation: true,
  peepholes: true, inputGate: true, forgetGate: true, outputGate: true, coupledInputForget: true, fullGateRecurrence: true, cellClip: true,
  variant: true, projSize: true, projClip: true, cellBlockSize: true,
});
const GRU_OPTIONS = optionNames<GRUOptions>({ ...RECURRENT_OPTIONS, resetAfter: true, recurrentActivation: true, activation: true });

function baseArgs(options: RecurrentOptions): [number, DType, boolean, boolean, number | undefined] {
  if (typeof options !== 'object' || options === null) throw new TypeError('options: expected an object');
  const inputSize = options.inputSize === undefined ? 0 : dimension(options.inputSize, 'options.inputSize');
  const dtype = dtypeOption(options.dtype, 'options.dtype');
  return [
    inputSize, dtype, flag(options.returnSequences, 'options.returnSequences', false), flag(options.returnState, 'options.returnState', false),
    seedOption(options.seed, 'options.seed'),
  ];
}

export abstract class Recurrent extends RecurrentBase {
  readonly units: number;
  readonly goBackwards: boolean;
  readonly useBias: boolean;
  /** ONNX clip of the gate pre-activations (0 = off). */
  readonly clip: number;
  readonly numLayers: number;
  readonly bidirectional: boolean;
  /** Dropout fractions (see RecurrentOptions). */
  readonly dropout: number;
  readonly recurrentDropout: number;
  protected readonly params: Map<ParamName, Tensor> = new Map();
  /** The cell options as the native core takes them; set by each subclass. */
  protected cellOptions: NativeCellOptions = {};
  /** LSTM projection size (0 = none) and its clip; h and the outputs then have projSize features. */
  protected projSize = 0;
  protected projClip = 0;
  /** Bumped on every change of the parameters (optimizers, loadStateDict, markWeightsChanged). */
  protected readonly version = new WeightVersion();
  private def: StackDef | undefined;

  /** Features of h and of each direction's output: units, or projSize for a projected LSTM. */
  get outputSize(): number {
    return this.projSize > 0 ? this.projSize : this.units;
  }
  protected get outputSizeName(): 'units' | 'projSize' {
    return this.projSize > 0 ? 'projSize' : 'units';
  }
  get numDirections(): 1 | 2 {
    return this.bidirectional ? 2 : 1;
  }

  protected abstract readonly cell: NativeCell;
  protected abstract readonly gates: number;
  protected abstract readonly stateCount: 1 | 2;
  protected readonly linearBeforeReset: boolean = false;

  /** The options this layer was made with (Bidirectional clones them for its backward layer); build() adds inputSize. */
  options: Readonly<RecurrentOptions>;
  readonly #stateful: boolean;
  override get stateful(): boolean {
    return this.#stateful;
  }
  /** The seed the parameters are made with when build() runs (a layer made without inputSize). */
  private pendingSeed: number | undefined;

  constructor(options: RecurrentOptions) {
    // Unknown keys are checked by each subclass (it knows its option names) before calling super.
    super(...baseArgs(options));
    this.options = Object.freeze({ ...options });
    this.units = dimension(options.units, 'options.units');
    this.goBackwards = flag(options.goBackwards, 'options.goBackwards', false);
    this.useBias = flag(options.useBias, 'options.useBias', true);
    this.clip = clipOption(options.clip, 'options.clip');
    this.numLayers = options.numLayers === undefined ? 1 : dimension(options.numLayers, 'options.numLayers');
    if (this.numLayers > 4096) throw new RangeError(`options.numLayers: expected at most 4096, got ${this.numLayers}`);
    this.bidirectional = flag(options.bidirectional, 'options.bidirectional', false);
    if (this.goBackwards && (this.bidirectional || this.numLayers > 1)) {
      throw new TypeError('options.goBackwards: only for a single unidirectional layer (a bidirectional stack already has a reverse direction)');
    }
    this.dropout = fraction(options.dropout, 'options.dropout');
    this.recurrentDropout = fraction(options.recurrentDropout, 'options.recurrentDropout');
    this.#stateful = flag(options.stateful, 'options.stateful', false);
    this.initializers = {
      kernel: checkInitializer(options.kernelInitializer ?? 'glorotUniform', 'options.kernelInitializer', this.dtype),
      recurrent: checkInitializer(options.recurrentInitializer ?? 'orthogonal', 'options.recurrentInitializer', this.dtype),
      bias: checkInitializer(options.biasInitializer ?? 'zeros', 'options.biasInitializer', this.dtype),
    };
  }

  private readonly initializers: { kernel: Initializer; recurrent: Initializer; bias: Initializer };

  /** PyTorch's suffix of a layer-direction: '_l1', '_l1_reverse'. */
  protected suffix(layer: number, dir: number): string {
    return `_l${layer}${dir === 1 ? '_reverse' : ''}`;
  }

  /** Input features of layer k. */
  protected layerInputSize(layer: number): number {
    return layer === 0 ? this.inputSize : this.numDirections * this.outputSize;
  }

  /** Creates the parameters with Keras's default initialisers; subclasses call it at the end of their constructor. */
  protected initParameters(seed: number | undefined): void {
    if (!this.built) {
      this.pendingSeed = seed;  // build() makes them once the input size is known
      return;
    }
    // Every parameter must fit a typed array: checked before anything is allocated.
    const sizes = `options.inputSize=${this.inputSize}, options.units=${this.units}${this.projSize > 0 ? `, options.projSize=${this.projSize}` : ''}`;
    for (const [name, shape] of Object.entries(this.parameterShapes())) {
      checkElementCount(shapeSize(shape), sizes, `parameter ${name} ${formatShape(shape)}`);
    }
    const rng = new Random(seed);
    const H = this.units, P = this.outputSize;
    const rows = this.gateRows();
    const R = rows.reduce((a, b) => a + b, 0);
    const init = this.initializers;
    for (let l = 0; l < this.numLayers; l++) {
      for (let d = 0; d < this.numDirections; d++) {
        const sfx = this.suffix(l, d), I = this.layerInputSize(l);
        const wIh = Tensor.zeros([R, I], this.dtype);
        const wHh = Tensor.zeros([R, P], this.dtype);
        let offset = 0;
        for (const n of rows) {
          initialize(wIh.data.subarray(offset * I, (offset + n) * I), init.kernel, 1, n, I, H, rng, 'options.kernelInitializer');
          // Non-square gate blocks (projection, cell blocks) fall back to Glorot where orthogonal is asked.
          const recurrent = n !== P && init.recurrent === 'orthogonal' ? 'glorotUniform' : init.recurrent;
          initialize(wHh.data.subarray(offset * P, (offset + n) * P), recurrent, 1, n, P, H, rng, 'options.recurrentInitializer');
          offset += n;
        }
        this.params.set(`weight_ih${sfx}`, wIh);
        this.params.set(`weight_hh${sfx}`, wHh);
        if (this.useBias) {
          const bIh = Tensor.zeros([R], this.dtype);
          const bHh = Tensor.zeros([R], this.dtype);
          initialize(bIh.data, init.bias, 1, 1, R, H, rng, 'options.biasInitializer');
          initialize(bHh.data, init.bias, 1, 1, R, H, rng, 'options.biasInitializer');
          this.initBias(bIh.data, bHh.data);
          this.params.set(`bias_ih${sfx}`, bIh);
          this.params.set(`bias_hh${sfx}`, bHh);
        }
        if (this.cellOptions.peephole) this.params.set(`weight_peephole${sfx}`, Tensor.zeros([3 * H], this.dtype));
        if (this.cellOptions.fullGateRecurrence) this.params.set(`weight_gr${sfx}`, Tensor.zeros([3 * H, 3 * H], this.dtype));
        if (this.projSize > 0) {
          const wHr = Tensor.zeros([P, H], this.dtype);
          initialize(wHr.data, init.kernel === 'orthogonal' || init.kernel === 'identity' ? 'glorotUniform' : init.kernel, 1, P, H, H, rng, 'options.kernelInitializer');
          this.params.set(`weight_hr${sfx}`, wHr);
        }
      }
    }
    trackParameters(this.params.values(), this.version);
  }

  build(inputSize: number, seed?: number): void {
    if (!this.setInputSize(inputSize, `${this.className}.build`)) return;
    let s = this.pendingSeed;
    if (s === undefined && seed !== undefined) {
      s = seed;
      this.reseedDropout(seed);
    }
    // The configuration records the seed used, so fromConfig rebuilds the same weights.
    this.options = Object.freeze({ ...this.options, inputSize, ...(s !== undefined ? { seed: s } : {}) });
    this.initParameters(s);
  }

  /** Rows of each gate block in the stored parameters (G blocks of `units`; cell blocks store fewer). */
  protected gateRows(): number[] {
    return new Array<number>(this.gates).fill(this.units);
  }

  /**
   * For each row r of the native [G·units] gate layout, the stored parameter row it uses; null when
   * they are the same. (LSTM cell blocks: S cells share one row of each gate.)
   */
  protected rowMap(): Int32Array | null {
    return null;
  }

  /** Stored [rows, cols] → native [G·units, cols] through rowMap (gather). */
  private expandRows(src: NativeArray, map: Int32Array, cols: number): NativeArray {
    const dst = newTypedArray(this.dtype, map.length * cols, this.className, 'a buffer of this call');
    for (let r = 0; r < map.length; r++) dst.set(src.subarray(map[r] * cols, (map[r] + 1) * cols), r * cols);
    return dst;
  }

  /** Native [G·units, cols] gradient → stored [rows, cols] (sum over the rows that share a stored row). */
  private foldRows(src: NativeArray, map: Int32Array, rows: number, cols: number): NativeArray {
    const dst = newTypedArray(this.dtype, rows * cols, this.className, 'a buffer of this call');
    for (let r = 0; r < map.length; r++) {
      const to = map[r] * cols, from = r * cols;
      for (let j = 0; j < cols; j++) dst[to + j] += src[from + j];
    }
    return dst;
  }

  /** Adjusts the initial biases (an LSTM sets its forget bias here). */
  protected initBias(_biasIh: TensorData, _biasHh: TensorData): void {}

  /** Parameter shapes by name (PyTorch names and layouts, gate order as PyTorch). */
  parameterShapes(): Record<string, number[]> {
    const H = this.units, P = this.outputSize;
    const R = this.gateRows().reduce((a, b) => a + b, 0);
    const shapes: Record<string, number[]> = {};
    for (let l = 0; l < this.numLayers; l++) {
      for (let d = 0; d < this.numDirections; d++) {
        const sfx = this.suffix(l, d);
        shapes[`weight_ih${sfx}`] = [R, this.layerInputSize(l)];
        shapes[`weight_hh${sfx}`] = [R, P];
        if (this.useBias) {
          shapes[`bias_ih${sfx}`] = [R];
          shapes[`bias_hh${sfx}`] = [R];
        }
        if (this.cellOptions.peephole) shapes[`weight_peephole${sfx}`] = [3 * H];
        if (this.projSize > 0) shapes[`weight_hr${sfx}`] = [P, H];
        if (this.cellOptions.fullGateRecurrence) shapes[`weight_gr${sfx}`] = [3 * H, 3 * H];
      }
    }
    return shapes;
  }

  /**
   * The parameters, live (not copies), keyed with PyTorch's names. After changing their values in
   * place by hand, call markWeightsChanged() (optimizers and loadStateDict do it themselves).
   */
  stateDict(): Record<string, Tensor> {
    return Object.fromEntries(this.params);
  }

  /**
   * Copies parameters in, checking names, shapes and that every value is finite. Tensors of the other
   * dtype are converted (float64 into a float32 layer rounds to float32).
   */
  loadStateDict(dict: Record<string, Tensor>, options?: LoadStateDictOptions): void {
    loadParameters(this.className, this.stateDict(), this.parameterShapes(), dict, options);
    this.version.bump();
  }

  /** Declares that the parameters changed in place (re-prepares the native weights; older training runs become stale). */
  markWeightsChanged(): void {
    this.version.bump();
  }

  /** The native description of one layer-direction. */
  protected cellSpec(layer: number): NativeCellSpec {
    return {
      ...this.cellOptions,
      clip: this.clip,
      cell: this.cell,
      linearBeforeReset: this.linearBeforeReset,
      inputSize: this.layerInputSize(layer),
      hiddenSize: this.units,
      ...(this.projSize > 0 ? { projSize: this.projSize, projClip: this.projClip } : {}),
    };
  }

  /** The native weights of one layer-direction (cell blocks expanded). */
  protected cellWeights(layer: number, dir: number, where: string): NativeCellWeights {
    const sfx = this.suffix(layer, dir);
    for (const [name, t] of this.params) {
      if (!name.endsWith(sfx)) continue;
      const problem = elementCount(t.data) === 0 ? bufferProblem(t.data) : undefined;
      if (problem) throw new TypeError(`${where}: parameter ${name}: ${describeBufferProblem(problem)}`);
    }
    const map = this.rowMap();
    const gather = (name: string, cols: number): NativeArray | undefined => {
      const t = this.params.get(name + sfx);
      return t && map ? this.expandRows(t.data, map, cols) : t?.data;
    };
    const w: NativeCellWeights = {
      weightIh: gather('weight_ih', this.layerInputSize(layer))!,
      weightHh: gather('weight_hh', this.outputSize)!,
    };
    const bIh = gather('bias_ih', 1), bHh = gather('bias_hh', 1);
    if (bIh) w.biasIh = bIh;
    if (bHh) w.biasHh = bHh;
    for (const name of PLAIN_PARAMETERS) {
      const t = this.params.get(`${TORCH_NAME.get(name)}${sfx}`);
      if (t) w[name] = t.data;
    }
    return w;
  }

  /** Native gradients of one layer-direction → stored names and shapes (cell blocks folded). */
  protected cellGradients(layer: number, dir: number, g: Partial<Record<CellParamName, NativeArray>>, out: Record<string, Tensor>): void {
    const sfx = this.suffix(layer, dir), P = this.outputSize, I = this.layerInputSize(layer);
    const map = this.rowMap();
    const R = this.gateRows().reduce((a, b) => a + b, 0);
    const fold = (v: NativeArray, cols: number) => (map ? this.foldRows(v, map, R, cols) : v);
    out[`weight_ih${sfx}`] = Tensor.from(fold(g.weightIh!, I), [R, I]);
    out[`weight_hh${sfx}`] = Tensor.from(fold(g.weightHh!, P), [R, P]);
    if (this.useBias) {
      out[`bias_ih${sfx}`] = Tensor.from(fold(g.biasIh!, 1), [R]);
      out[`bias_hh${sfx}`] = Tensor.from(fold(g.biasHh!, 1), [R]);
    }
    for (const name of PLAIN_PARAMETERS) {
      const key = `${TORCH_NAME.get(name)}${sfx}`, v = g[name];
      if (v) out[key] = Tensor.from(v, this.params.get(key)!.shape);
    }
  }

  /** What this layer is in the terms of the weight formats (lib/io/layouts.ts checks them at export). */
  features(): RecurrentFeatures {
    const o = this.cellOptions;
    return {
      family: this.cell === 'lstm' ? 'lstm' : this.cell === 'gru' ? 'gru' : 'rnn',
      units: this.units, inputSize: this.inputSize, outputSize: this.outputSize, numLayers: this.numLayers, bidirectional: this.bidirectional,
      goBackwards: this.goBackwards, useBias: this.useBias, clip: this.clip, linearBeforeReset: this.linearBeforeReset,
      gateActivation: o.gateActivation as NativeActivation | undefined,
      candidateActivation: (o.candidateActivation ?? (this.cell === 'rnn_relu' ? { name: 'Relu', alpha: 0, beta: 0 } : this.cell === 'rnn_tanh' ? { name: 'Tanh', alpha: 0, beta: 0 } : undefined)) as NativeActivation | undefined,
      outputActivation: o.outputActivation as NativeActivation | undefined,
      peepholes: !!o.peephole, noInputGate: !!o.noInputGate, noForgetGate: !!o.noForgetGate, noOutputGate: !!o.noOutputGate,
      coupledInputForget: !!o.coupledInputForget, fullGateRecurrence: !!o.fullGateRecurrence, cellClip: o.cellClip ?? 0,
      projSize: this.projSize, projClip: this.projClip, cellBlockSize: (this as { cellBlockSize?: number }).cellBlockSize ?? 1,
    };
  }

  /** @internal */
  stackDef(): StackDef {
    if (this.def) return this.def;
    const L = this.numLayers, D = this.numDirections;
    this.def = {
      numLayers: L,
      numDirections: D,
      units: this.units,
      outputSize: this.outputSize,
      outputSizeName: this.outputSizeName,
      stateCount: this.stateCount,
      cells: () => {
        const cells: NativeCellSpec[] = [];
        for (let l = 0; l < L; l++) for (let d = 0; d < D; d++) cells.push(this.cellSpec(l));
        return cells;
      },
      weights: (where) => {
        const w: NativeCellWeights[] = [];
        for (let l = 0; l < L; l++) for (let d = 0; d < D; d++) w.push(this.cellWeights(l, d, where));
        return w;
      },
      versionKey: () => String(this.version.value),
      gradients: (grads) => {
        const out: Record<string, Tensor> = {};
        for (let l = 0; l < L; l++) for (let d = 0; d < D; d++) this.cellGradients(l, d, grads[l * D + d], out);
        return out;
      },
    };
    return this.def;
  }

  /** @internal */
  override processingOrder(): boolean {
    return this.goBackwards;
  }

  /** @internal */
  stateStyle(): StateStyle {
    return this.numLayers * this.numDirections === 1 ? 'single' : 'stacked';
  }

  /** @internal */
  override dropoutConfig(): DropoutConfig | undefined {
    const c: DropoutConfig = {};
    if (this.dropout > 0) {
      if (this.numLayers > 1) c.betweenKeep = 1 - this.dropout;
      else c.inputKeep = 1 - this.dropout;
    }
    if (this.recurrentDropout > 0) c.stateKeep = 1 - this.recurrentDropout;
    if (c.inputKeep === undefined && c.betweenKeep === undefined && c.stateKeep === undefined) return undefined;
    c.variational = true;
    c.stateOnInitial = true;
    return c;
  }
}

export interface SimpleRNNOptions extends RecurrentOptions {
  /** Any activation of the ONNX set (see activations.ts); default 'tanh'. */
  activation?: ActivationSpec;
}

/** h_t = act(W x_t + b_W + R h_{t-1} + b_R). */
export class SimpleRNN extends Recurrent {
  readonly className = 'SimpleRNN';
  readonly activation: ActivationSpec;
  protected readonly cell: NativeCell;
  protected readonly gates = 1;
  protected readonly stateCount: 1 | 2 = 1;
  constructor(options: SimpleRNNOptions) {
    super(checkOptions(options, 'options', SIMPLE_RNN_OPTIONS, 'SimpleRNN'));
    this.activation = options.activation ?? 'tanh';
    const act = resolveActivation(this.activation, 'options.activation');
    // tanh and relu have their own fast kernels; every other activation runs the general ones.
    this.cell = act.name === 'Relu' ? 'rnn_relu' : 'rnn_tanh';
    this.cellOptions = act.name === 'Relu' || act.name === 'Tanh' ? {} : { candidateActivation: act };
    this.initParameters(options.seed);
  }
}

/**
 * The LSTM variants of Greff et al. (2015), "LSTM: A Search Space Odyssey": each is the vanilla LSTM
 * (V, with peepholes) with one change. NP (no peepholes) is also rnnkit's default form, as in PyTorch,
 * Keras and tfjs.
 */
export type LSTMVariant = 'V' | 'NIG' | 'NFG' | 'NOG' | 'NIAF' | 'NOAF' | 'NP' | 'CIFG' | 'FGR';

export interface LSTMOptions extends RecurrentOptions {
  /** Initialise the forget-gate bias to 1 (Jozefowicz et al. 2015; default true). */
  unitForgetBias?: boolean;
  /** Gate activation (i, f, o); default 'sigmoid'. tfjs's default is 'hardSigmoid'. */
  recurrentActivation?: ActivationSpec;
  /** Block-input and output activation (g and h); default 'tanh'. */
  activation?: ActivationSpec;
  /** Block-input activation g alone (NIAF: 'linear'); default `activation`. */
  candidateActivation?: ActivationSpec;
  /** Output activation h alone (NOAF: 'linear'); default `activation`. */
  outputActivation?: ActivationSpec;
  /** Peephole connections p_i, p_f (from c_{t-1}) and p_o (from c_t); parameter weight_peephole_l0 [3H]. */
  peepholes?: boolean;
  /** false: no input gate, i = 1 (NIG). */
  inputGate?: boolean;
  /** false: no forget gate, f = 1 (NFG). */
  forgetGate?: boolean;
  /** false: no output gate, o = 1 (NOG). */
  outputGate?: boolean;
  /** Coupled input and forget gate, f = 1 − i (CIFG; ONNX input_forget). */
  coupledInputForget?: boolean;
  /**
   * Full gate recurrence (FGR): the gates i, f, o also receive the previous step's i, f, o through
   * weight_gr_l0 [3H, 3H] (rows: gate i, f, o; columns: i, f, o at t−1; nine H×H blocks; starts at 0).
   */
  fullGateRecurrence?: boolean;
  /** TF1 cell_clip: clamp c_t to [−cellClip, cellClip] (0 = off). Distinct from `clip`. */
  cellClip?: number;
  /** A Greff et al. variant as a shorthand for the options above; explicit options override it. */
  variant?: LSTMVariant;
  /**
   * Projection (LSTMP; PyTorch proj_size, TF1 num_proj): h_t = W_hr (o ⊙ act(c_t)) with
   * weight_hr_l0 [projSize, units]; h, the outputs and weight_hh_l0's columns have projSize features.
   */
  projSize?: number;
  /** TF1 proj_clip: clamp the projected h_t to [−projClip, projClip] (0 = off; needs projSize). */
  projClip?: number;
  /**
   * Memory cell blocks (Hochreiter & Schmidhuber 1997): S cells share one input, forget and output
   * gate; each keeps its own block input g. units must be a multiple of S. The gate parameters then
   * have units/S rows for i, f, o: weight_ih_l0 [3·units/S + units, inputSize], rows i, f, g, o.
   * Not combinable with peepholes or fullGateRecurrence (both are per cell). Default 1.
   */
  cellBlockSize?: number;
}

const VARIANTS: Record<LSTMVariant, Partial<LSTMOptions>> = {
  V: { peepholes: true },
  NIG: { peepholes: true, inputGate: false },
  NFG: { peepholes: true, forgetGate: false },
  NOG: { peepholes: true, outputGate: false },
  NIAF: { peepholes: true, candidateActivation: 'linear' },
  NOAF: { peepholes: true, outputActivation: 'linear' },
  NP: { peepholes: false },
  CIFG: { peepholes: true, coupledInputForget: true },
  FGR: { peepholes: true, fullGateRecurrence: true },
};

/**
 * LSTM, PyTorch gate order i, f, g, o; states [h, c]:
 *   i = σ(W_i x + R_i h + p_i ⊙ c_{t-1} + b_i)   f = σ(W_f x + R_f h + p_f ⊙ c_{t-1} + b_f)
 *   g = act(W_g x + R_g h + b_g)   c_t = g ⊙ i + c_{t-1} ⊙ f   o = σ(W_o x + R_o h + p_o ⊙ c_t + b_o)
 *   h_t = o ⊙ act(c_t)
 */
export class LSTM extends Recurrent {
  readonly className = 'LSTM';
  protected readonly cell = 'lstm';
  protected readonly gates = 4;
  protected readonly stateCount: 1 | 2 = 2;
  private readonly unitForgetBias: boolean;
  /** Cells per memory cell block (1 = every cell has its own gates). */
  readonly cellBlockSize: number = 1;
  private blockRowMap: Int32Array | null = null;
  constructor(options: LSTMOptions) {
    super(checkOptions(options, 'options', LSTM_OPTIONS, 'LSTM'));
    let preset: Partial<LSTMOptions> = {};
    if (options.variant !== undefined) {
      if (typeof options.variant !== 'string' || !Object.prototype.hasOwnProperty.call(VARIANTS, options.variant)) {
        throw new TypeError(`options.variant: expected one of ${Object.keys(VARIANTS).join(', ')}, got ${show(options.variant)}`);
      }
      preset = VARIANTS[options.variant];
    }
    const o: LSTMOptions = { ...preset, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) } as LSTMOptions;
    this.unitForgetBias = flag(o.unitForgetBias, 'options.unitForgetBias', true);
    const activation = o.activation ?? 'tanh';
    const inputGate = flag(o.inputGate, 'options.inputGate', true);
    const forgetGate = flag(o.forgetGate, 'options.forgetGate', true);
    const coupled = flag(o.coupledInputForget, 'options.coupledInputForget', false);
    if (coupled && (!inputGate || !forgetGate)) {
      throw new RangeError('options.coupledInputForget: CIFG computes f = 1 − i, so it needs both inputGate and forgetGate');
    }
    this.cellOptions = {
      gateActivation: resolveActivation(o.recurrentActivation ?? 'sigmoid', 'options.recurrentActivation'),
      candidateActivation: resolveActivation(o.candidateActivation ?? activation, o.candidateActivation ? 'options.candidateActivation' : 'options.activation'),
      outputActivation: resolveActivation(o.outputActivation ?? activation, o.outputActivation ? 'options.outputActivation' : 'options.activation'),
      peephole: flag(o.peepholes, 'options.peepholes', false),
      noInputGate: !inputGate,
      noForgetGate: !forgetGate,
      noOutputGate: !flag(o.outputGate, 'options.outputGate', true),
      coupledInputForget: coupled,
      fullGateRecurrence: flag(o.fullGateRecurrence, 'options.fullGateRecurrence', false),
      cellClip: clipOption(o.cellClip, 'options.cellClip'),
    };
    this.cellBlockSize = o.cellBlockSize === undefined ? 1 : dimension(o.cellBlockSize, 'options.cellBlockSize');
    if (this.units % this.cellBlockSize !== 0) {
      throw new RangeError(`options.cellBlockSize: units (${this.units}) must be a multiple of cellBlockSize (${this.cellBlockSize})`);
    }
    if (this.cellBlockSize > 1 && (this.cellOptions.peephole || this.cellOptions.fullGateRecurrence)) {
      throw new RangeError('options.cellBlockSize: cell blocks cannot be combined with peepholes or fullGateRecurrence (both are per cell)');
    }
    if (o.projSize !== undefined) this.projSize = dimension(o.projSize, 'options.projSize');
    this.projClip = clipOption(o.projClip, 'options.projClip');
    if (this.projClip > 0 && this.projSize === 0) throw new TypeError('options.projClip: needs options.projSize');
    this.initParameters(options.seed);
  }
  protected override initBias(biasIh: TensorData, biasHh: TensorData): void {
    // Forget bias 1 in total (b_ih + b_hh), as Keras's unit_forget_bias.
    if (this.unitForgetBias) {
      const [ri, rf] = this.gateRows();
      biasIh.fill(1, ri, ri + rf);
      biasHh.fill(0, ri, ri + rf);
    }
  }

  protected override gateRows(): number[] {
    const H = this.units, S = this.cellBlockSize;
    return [H / S, H / S, H, H / S];
  }

  protected override rowMap(): Int32Array | null {
    if (this.cellBlockSize === 1) return null;
    if (!this.blockRowMap) {
      const H = this.units, S = this.cellBlockSize, nb = H / S;
      const offsets = [0, nb, 2 * nb, 2 * nb + H];  // stored rows of i, f, g, o
      const map = new Int32Array(4 * H);
      for (let q = 0; q < 4; q++) for (let k = 0; k < H; k++) map[q * H + k] = offsets[q] + (q === 2 ? k : Math.floor(k / S));
      this.blockRowMap = map;
    }
    return this.blockRowMap;
  }
}

export interface GRUOptions extends RecurrentOptions {
  /**
   * true (default): linear before reset, n = tanh(W_n x + b_Wn + r ⊙ (R_n h + b_Rn)) — PyTorch, cuDNN,
   * ONNX linear_before_reset=1, Keras reset_after=True. false: reset before, n = tanh(W_n x + R_n (r ⊙ h) + b)
   * — Cho et al. 2014, tfjs.
   */
  resetAfter?: boolean;
  /** Gate activation (r, z); default 'sigmoid'. */
  recurrentActivation?: ActivationSpec;
  /** Candidate activation (n); default 'tanh'. */
  activation?: ActivationSpec;
}

/** GRU, PyTorch gate order r, z, n. */
export class GRU extends Recurrent {
  readonly className = 'GRU';
  protected readonly cell = 'gru';
  protected readonly gates = 3;
  protected readonly stateCount: 1 | 2 = 1;
  protected override readonly linearBeforeReset: boolean;
  constructor(options: GRUOptions) {
    super(checkOptions(options, 'options', GRU_OPTIONS, 'GRU'));
    this.linearBeforeReset = flag(options.resetAfter, 'options.resetAfter', true);
    this.cellOptions = {
      gateActivation: resolveActivation(options.recurrentActivation ?? 'sigmoid', 'options.recurrentActivation'),
      candidateActivation: resolveActivation(options.activation ?? 'tanh', 'options.activation'),
    };
    this.initParameters(options.seed);
  }
}
