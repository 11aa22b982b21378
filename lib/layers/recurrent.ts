// Recurrent layers over whole sequences: SimpleRNN, LSTM and GRU. Batch-first at the API (like
// tfjs/Keras), time-major inside (converted once here); parameters are a PyTorch-style state dict.
import { native, NATIVE_NUMBER_LIMIT, type NativeArray, type NativeCell, type NativeCellOptions, type NativeConfig } from '../native.js';
import { resolveActivation, type ActivationSpec } from '../activations.js';
import {
  bufferProblem, checkElementCount, checkTensor, describeBufferProblem, elementCount, formatShape, newTypedArray, shapeSize, Tensor, type DType, type TensorData,
} from '../tensor.js';
import { checkInitializer, initialize, Random, type Initializer } from '../init.js';
import { loadParameters, type LoadStateDictOptions } from '../params.js';
import { checkOptions, dimension, flag, numberIn, optionNames, seedOption, show, type OptionTable } from '../options.js';

export interface RecurrentOptions {
  /** Features per step of the input. */
  inputSize: number;
  /** Hidden units (the size of h). */
  units: number;
  /** Return the whole output sequence [batch, steps, units] instead of the last output [batch, units]. */
  returnSequences?: boolean;
  /** Also return the final states ([h] or [h, c]). */
  returnState?: boolean;
  /** Process the sequence in reverse; with returnSequences the outputs come in reversed order (Keras). */
  goBackwards?: boolean;
  /** Whether the layer has biases (default true). */
  useBias?: boolean;
  /** Scalar type of parameters and data (default 'float32'; 'float64' exists for exact checks). */
  dtype?: DType;
  /** Seed for the initial weights: a safe integer (used modulo 2^32); default a random one. */
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
}

export interface ForwardOptions {
  /** Initial states, each [batch, units]: [h0] or, for LSTM, [h0, c0]. Default zeros. */
  initialState?: Tensor[];
  /** Keep what backward() needs (default false: inference keeps O(batch·units) state only). */
  training?: boolean;
}

/** What a training forward keeps for backward(). Valid until the layer's weights change. */
export interface TrainingRun {
  readonly layer: Recurrent;
  readonly batch: number;
  readonly steps: number;
  /** @internal */ readonly xTime: TensorData;
  /** @internal */ readonly workspace: TensorData;
  /** @internal */ readonly hadInitialState: boolean;
}

export interface ForwardResult {
  /** [batch, steps, units] with returnSequences, else [batch, units]. */
  output: Tensor;
  /** Final states ([h] or [h, c], each [batch, units]) when returnState is set, else []. */
  states: Tensor[];
  /** Present when forward ran with training: true. */
  run?: TrainingRun;
}

export interface BackwardOptions {
  /** Gradients of the final states, matching `states` ([dh] or [dh, dc]). */
  dStates?: (Tensor | null | undefined)[];
}

export interface Gradients {
  /** dLoss/dInput, [batch, steps, inputSize]. */
  input: Tensor;
  /** dLoss/dInitialState ([dh0] or [dh0, dc0]), each [batch, units]. */
  initialState: Tensor[];
  /** dLoss/dParameter, keyed like stateDict(). */
  params: Record<string, Tensor>;
}

type ParamName = 'weight_ih_l0' | 'weight_hh_l0' | 'bias_ih_l0' | 'bias_hh_l0' | 'weight_peephole_l0' | 'weight_hr_l0' | 'weight_gr_l0';

/** clip, cellClip, projClip: 0 (off) when undefined, else a number in the native core's [0, 1e30]. */
function clipOption(v: unknown, what: string): number {
  return v === undefined ? 0 : numberIn(v, what, 0, NATIVE_NUMBER_LIMIT, ' (0 = off)');
}

const RECURRENT_OPTIONS: OptionTable<RecurrentOptions> = {
  inputSize: true, units: true, returnSequences: true, returnState: true, goBackwards: true, useBias: true, dtype: true, seed: true,
  kernelInitializer: true, recurrentInitializer: true, biasInitializer: true, clip: true,
};
const SIMPLE_RNN_OPTIONS = optionNames<SimpleRNNOptions>({ ...RECURRENT_OPTIONS, activation: true });
const LSTM_OPTIONS = optionNames<LSTMOptions>({
  ...RECURRENT_OPTIONS, unitForgetBias: true, recurrentActivation: true, activation: true, candidateActivation: true, outputActivation: true,
  peepholes: true, inputGate: true, forgetGate: true, outputGate: true, coupledInputForget: true, fullGateRecurrence: true, cellClip: true,
  variant: true, projSize: true, projClip: true, cellBlockSize: true,
});
const GRU_OPTIONS = optionNames<GRUOptions>({ ...RECURRENT_OPTIONS, resetAfter: true, recurrentActivation: true, activation: true });
const FORWARD_OPTIONS = optionNames<ForwardOptions>({ initialState: true, training: true });
const BACKWARD_OPTIONS = optionNames<BackwardOptions>({ dStates: true });

/**
 * The runs each layer issued (frozen): backward takes no other object, so a run's batch, steps and
 * buffers are the ones its forward made.
 */
const issuedRuns = new WeakMap<object, Recurrent>();

export abstract class Recurrent {
  readonly inputSize: number;
  readonly units: number;
  readonly returnSequences: boolean;
  readonly returnState: boolean;
  readonly goBackwards: boolean;
  readonly useBias: boolean;
  readonly dtype: DType;
  /** ONNX clip of the gate pre-activations (0 = off). */
  readonly clip: number;
  protected readonly params: Map<ParamName, Tensor> = new Map();
  /** The cell options as the native core takes them; set by each subclass. */
  protected cellOptions: NativeCellOptions = {};
  /** LSTM projection size (0 = none) and its clip; h and the outputs then have projSize features. */
  protected projSize = 0;
  protected projClip = 0;

  /** Features of h and of the output: units, or projSize for a projected LSTM. */
  get outputSize(): number {
    return this.projSize > 0 ? this.projSize : this.units;
  }
  protected get outputSizeName(): string {
    return this.projSize > 0 ? 'projSize' : 'units';
  }

  protected abstract readonly cell: NativeCell;
  protected abstract readonly gates: number;
  protected abstract readonly stateCount: number;
  protected readonly linearBeforeReset: boolean = false;
  abstract readonly className: string;

  constructor(options: RecurrentOptions) {
    // Unknown keys are checked by each subclass (it knows its option names) before calling super.
    if (typeof options !== 'object' || options === null) throw new TypeError('options: expected an object');
    this.inputSize = dimension(options.inputSize, 'options.inputSize');
    this.units = dimension(options.units, 'options.units');
    this.returnSequences = flag(options.returnSequences, 'options.returnSequences', false);
    this.returnState = flag(options.returnState, 'options.returnState', false);
    this.goBackwards = flag(options.goBackwards, 'options.goBackwards', false);
    this.useBias = flag(options.useBias, 'options.useBias', true);
    this.dtype = options.dtype ?? 'float32';
    if (this.dtype !== 'float32' && this.dtype !== 'float64') {
      throw new TypeError(`options.dtype: expected 'float32' or 'float64', got ${show(options.dtype)}`);
    }
    seedOption(options.seed, 'options.seed');
    this.clip = clipOption(options.clip, 'options.clip');
    this.initializers = {
      kernel: checkInitializer(options.kernelInitializer ?? 'glorotUniform', 'options.kernelInitializer', this.dtype),
      recurrent: checkInitializer(options.recurrentInitializer ?? 'orthogonal', 'options.recurrentInitializer', this.dtype),
      bias: checkInitializer(options.biasInitializer ?? 'zeros', 'options.biasInitializer', this.dtype),
    };
  }

  private readonly initializers: { kernel: Initializer; recurrent: Initializer; bias: Initializer };

  /** Creates the parameters with Keras's default initialisers; subclasses call it at the end of their constructor. */
  protected initParameters(seed: number | undefined): void {
    // Every parameter must fit a typed array: checked before anything is allocated.
    const sizes = `options.inputSize=${this.inputSize}, options.units=${this.units}${this.projSize > 0 ? `, options.projSize=${this.projSize}` : ''}`;
    for (const [name, shape] of Object.entries(this.parameterShapes())) {
      checkElementCount(shapeSize(shape), sizes, `parameter ${name} ${formatShape(shape)}`);
    }
    const rng = new Random(seed);
    const H = this.units, I = this.inputSize, P = this.outputSize;
    const rows = this.gateRows();
    const R = rows.reduce((a, b) => a + b, 0);
    const init = this.initializers;
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
    this.params.set('weight_ih_l0', wIh);
    this.params.set('weight_hh_l0', wHh);
    if (this.useBias) {
      const bIh = Tensor.zeros([R], this.dtype);
      const bHh = Tensor.zeros([R], this.dtype);
      initialize(bIh.data, init.bias, 1, 1, R, H, rng, 'options.biasInitializer');
      initialize(bHh.data, init.bias, 1, 1, R, H, rng, 'options.biasInitializer');
      this.initBias(bIh.data, bHh.data);
      this.params.set('bias_ih_l0', bIh);
      this.params.set('bias_hh_l0', bHh);
    }
    if (this.cellOptions.peephole) this.params.set('weight_peephole_l0', Tensor.zeros([3 * H], this.dtype));
    if (this.cellOptions.fullGateRecurrence) this.params.set('weight_gr_l0', Tensor.zeros([3 * H, 3 * H], this.dtype));
    if (this.projSize > 0) {
      const wHr = Tensor.zeros([P, H], this.dtype);
      initialize(wHr.data, init.kernel === 'orthogonal' || init.kernel === 'identity' ? 'glorotUniform' : init.kernel, 1, P, H, H, rng, 'options.kernelInitializer');
      this.params.set('weight_hr_l0', wHr);
    }
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
    const dst = this.newArray(map.length * cols);
    for (let r = 0; r < map.length; r++) dst.set(src.subarray(map[r] * cols, (map[r] + 1) * cols), r * cols);
    return dst;
  }

  /** Native [G·units, cols] gradient → stored [rows, cols] (sum over the rows that share a stored row). */
  private foldRows(src: NativeArray, map: Int32Array, rows: number, cols: number): NativeArray {
    const dst = this.newArray(rows * cols);
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
    const shapes: Record<string, number[]> = { weight_ih_l0: [R, this.inputSize], weight_hh_l0: [R, P] };
    if (this.useBias) {
      shapes.bias_ih_l0 = [R];
      shapes.bias_hh_l0 = [R];
    }
    if (this.cellOptions.peephole) shapes.weight_peephole_l0 = [3 * H];
    if (this.projSize > 0) shapes.weight_hr_l0 = [P, H];
    if (this.cellOptions.fullGateRecurrence) shapes.weight_gr_l0 = [3 * H, 3 * H];
    return shapes;
  }

  /** The parameters, live (not copies), keyed with PyTorch's names. */
  stateDict(): Record<string, Tensor> {
    return Object.fromEntries(this.params);
  }

  /**
   * Copies parameters in, checking names, shapes and that every value is finite. Tensors of the other
   * dtype are converted (float64 into a float32 layer rounds to float32).
   */
  loadStateDict(dict: Record<string, Tensor>, options?: LoadStateDictOptions): void {
    loadParameters(this.className, this.stateDict(), this.parameterShapes(), dict, options);
  }


  protected nativeConfig(batch: number, steps: number): NativeConfig {
    return {
      ...this.cellOptions,
      clip: this.clip,
      cell: this.cell,
      linearBeforeReset: this.linearBeforeReset,
      reverse: this.goBackwards,
      steps,
      batch,
      inputSize: this.inputSize,
      hiddenSize: this.units,
      ...(this.projSize > 0 ? { projSize: this.projSize, projClip: this.projClip } : {}),
    };
  }

  /** The parameters as the native core takes them; `where` names the call in errors. */
  private nativeParams(where: string): {
    wIh: NativeArray; wHh: NativeArray; bIh?: NativeArray; bHh?: NativeArray; peep?: NativeArray; wHr?: NativeArray; wGr?: NativeArray;
  } {
    for (const [name, t] of this.params) {
      const problem = elementCount(t.data) === 0 ? bufferProblem(t.data) : undefined;
      if (problem) throw new TypeError(`${where}: parameter ${name}: ${describeBufferProblem(problem)}`);
    }
    const map = this.rowMap();
    const gather = (name: ParamName, cols: number): NativeArray | undefined => {
      const t = this.params.get(name);
      return t && map ? this.expandRows(t.data, map, cols) : t?.data;
    };
    return {
      wIh: gather('weight_ih_l0', this.inputSize)!,
      wHh: gather('weight_hh_l0', this.outputSize)!,
      bIh: gather('bias_ih_l0', 1),
      bHh: gather('bias_hh_l0', 1),
      wGr: this.params.get('weight_gr_l0')?.data,
      wHr: this.params.get('weight_hr_l0')?.data,
      peep: this.params.get('weight_peephole_l0')?.data,
    };
  }

  private newArray(n: number): TensorData {
    return newTypedArray(this.dtype, n, this.className, 'a buffer of this call');
  }

  /**
   * Batch-first [B, T, F] → time-major [T, B, F], or back with `toBatchFirst`. With `reverseTime`
   * the batch-first time index k maps to T-1-k (goBackwards returns outputs in reversed order).
   */
  private transpose(src: TensorData, batch: number, steps: number, features: number, toBatchFirst: boolean, reverseTime = false): TensorData {
    const dst = this.newArray(src.length);
    for (let b = 0; b < batch; b++) {
      for (let k = 0; k < steps; k++) {
        const t = reverseTime ? steps - 1 - k : k;
        const batchFirst = (b * steps + k) * features;
        const timeMajor = (t * batch + b) * features;
        if (toBatchFirst) dst.set(src.subarray(timeMajor, timeMajor + features), batchFirst);
        else dst.set(src.subarray(batchFirst, batchFirst + features), timeMajor);
      }
    }
    return dst;
  }

  private prepare(x: unknown, options: ForwardOptions | undefined, method: string) {
    const where = `${this.className}.${method}`;
    if (!Tensor.isTensor(x)) {
      throw new TypeError(`${where}: input must be a Tensor of shape [batch, steps, inputSize=${this.inputSize}], got ${x === null ? 'null' : typeof x}`);
    }
    if (x.rank !== 3 || x.shape[2] !== this.inputSize || x.shape[0] < 1 || x.shape[1] < 1) {
      throw new RangeError(
        `${where}: input must have shape [batch, steps, inputSize=${this.inputSize}] with batch, steps >= 1, got ${formatShape(x.shape)}`,
      );
    }
    const [batch, steps] = x.shape as [number, number, number];
    checkTensor(x, `${where}: input`, [batch, steps, this.inputSize], ['batch', 'steps', 'inputSize'], this.dtype);
    if (options !== undefined) checkOptions(options, `${where}: options`, FORWARD_OPTIONS);
    const training = flag(options?.training, `${where}: options.training`, false);
    const init = options?.initialState;
    let h0: NativeArray | undefined;
    let c0: NativeArray | undefined;
    if (init !== undefined && init !== null) {
      if (!Array.isArray(init) || init.length !== this.stateCount) {
        throw new TypeError(
          `${where}: initialState must be an array of ${this.stateCount} Tensor(s) ` +
            (this.stateCount === 2
              ? `[h0, c0]: h0 [batch=${batch}, ${this.outputSizeName}=${this.outputSize}], c0 [batch=${batch}, units=${this.units}]`
              : `[h0]: h0 [batch=${batch}, units=${this.units}]`),
        );
      }
      const names = ['h0', 'c0'];
      const states = init.map((s, i) =>
        checkTensor(s, `${where}: initialState[${i}] (${names[i]})`, [batch, i === 0 ? this.outputSize : this.units], ['batch', i === 0 ? this.outputSizeName : 'units'], this.dtype).data,
      );
      [h0, c0] = states;
    }
    const cfg = this.nativeConfig(batch, steps);
    const xTime = this.transpose(x.data, batch, steps, this.inputSize, false);
    const wantSeq = this.returnSequences;
    const p = this.nativeParams(where);
    const bufs = {
      x: xTime,
      weightIh: p.wIh,
      weightHh: p.wHh,
      biasIh: p.bIh,
      biasHh: p.bHh,
      peephole: p.peep,
      weightHr: p.wHr,
      weightGr: p.wGr,
      h0,
      c0,
      y: wantSeq || training ? this.newArray(steps * batch * this.outputSize) : undefined,
      hN: this.newArray(batch * this.outputSize),
      cN: this.stateCount === 2 ? this.newArray(batch * this.units) : undefined,
      workspace: training ? this.newArray(native.workspaceSize(cfg, this.dtype)) : undefined,
    };
    const finish = (): ForwardResult => {
      const H = this.units, P = this.outputSize;
      const output = wantSeq
        ? Tensor.from(this.transpose(bufs.y!, batch, steps, P, true, this.goBackwards), [batch, steps, P])
        : Tensor.from(bufs.hN.slice(), [batch, P]);
      const states: Tensor[] = [];
      if (this.returnState) {
        states.push(Tensor.from(bufs.hN, [batch, P]));
        if (bufs.cN) states.push(Tensor.from(bufs.cN, [batch, H]));
      }
      const result: ForwardResult = { output, states };
      if (training) {
        const run: TrainingRun = Object.freeze({ layer: this, batch, steps, xTime, workspace: bufs.workspace!, hadInitialState: h0 !== undefined });
        issuedRuns.set(run, this);
        result.run = run;
      }
      return result;
    };
    return { cfg, bufs, finish };
  }

  /** Runs the whole sequence synchronously. x: [batch, steps, inputSize]. */
  forward(x: Tensor, options?: ForwardOptions): ForwardResult {
    const { cfg, bufs, finish } = this.prepare(x, options, 'forward');
    native.forward(cfg, bufs);
    return finish();
  }

  /** Same as forward, computed on the libuv thread pool so the event loop stays free. */
  async forwardAsync(x: Tensor, options?: ForwardOptions): Promise<ForwardResult> {
    const { cfg, bufs, finish } = this.prepare(x, options, 'forwardAsync');
    await native.forwardAsync(cfg, bufs);
    return finish();
  }

  private prepareBackward(run: unknown, dOutput: unknown, options: BackwardOptions | undefined, method: string) {
    const where = `${this.className}.${method}`;
    if (typeof run !== 'object' || run === null || issuedRuns.get(run) !== this) {
      throw new TypeError(
        `${where}: run must be the .run of a forward(x, { training: true }) of this layer, got ${typeof run === 'object' && run !== null ? 'an object this layer did not issue (not a training run of this layer)' : show(run)}`,
      );
    }
    if (options !== undefined) checkOptions(options, `${where}: options`, BACKWARD_OPTIONS);
    const r = run as TrainingRun;
    const { batch, steps } = r;
    const H = this.units, P = this.outputSize, PN = this.outputSizeName;
    const cfg = this.nativeConfig(batch, steps);
    let dy: NativeArray | undefined;
    let dhN: NativeArray | undefined;
    let dcN: NativeArray | undefined;
    if (dOutput !== null && dOutput !== undefined) {
      if (this.returnSequences) {
        const d = checkTensor(dOutput, `${where}: dOutput`, [batch, steps, P], ['batch', 'steps', PN], this.dtype);
        dy = this.transpose(d.data, batch, steps, P, false, this.goBackwards);
      } else {
        // The last output is the final h: its gradient joins dh_N.
        dhN = checkTensor(dOutput, `${where}: dOutput`, [batch, P], ['batch', PN], this.dtype).data.slice();
      }
    }
    const dStates = options?.dStates ?? [];
    if (!Array.isArray(dStates) || dStates.length > this.stateCount) {
      throw new TypeError(`${where}: options.dStates must be an array of at most ${this.stateCount} Tensor(s)`);
    }
    dStates.forEach((s, i) => {
      if (s === null || s === undefined) return;
      const d = checkTensor(s, `${where}: dStates[${i}]`, [batch, i === 0 ? P : H], ['batch', i === 0 ? PN : 'units'], this.dtype).data;
      if (i === 0) {
        if (dhN) for (let k = 0; k < d.length; k++) dhN[k] += d[k];
        else dhN = d;
      } else dcN = d;
    });
    const G = this.gates, I = this.inputSize;
    const p = this.nativeParams(where);
    const bufs = {
      x: r.xTime,
      weightIh: p.wIh,
      weightHh: p.wHh,
      workspace: r.workspace,
      peephole: p.peep,
      dPeephole: p.peep ? this.newArray(3 * H) : undefined,
      dy,
      dhN,
      dcN,
      dx: this.newArray(steps * batch * I),
      dh0: this.newArray(batch * P),
      dc0: this.stateCount === 2 ? this.newArray(batch * H) : undefined,
      dWeightIh: this.newArray(G * H * I),
      dWeightHh: this.newArray(G * H * P),
      weightHr: p.wHr,
      dWeightHr: p.wHr ? this.newArray(P * H) : undefined,
      weightGr: p.wGr,
      dWeightGr: p.wGr ? this.newArray(9 * H * H) : undefined,
      dBiasIh: this.useBias ? this.newArray(G * H) : undefined,
      dBiasHh: this.useBias ? this.newArray(G * H) : undefined,
    };
    const finish = (): Gradients => {
      const map = this.rowMap();
      const R = this.gateRows().reduce((a, b) => a + b, 0);
      const fold = (g: NativeArray, cols: number) => (map ? this.foldRows(g, map, R, cols) : g);
      const params: Record<string, Tensor> = {
        weight_ih_l0: Tensor.from(fold(bufs.dWeightIh, I), [R, I]),
        weight_hh_l0: Tensor.from(fold(bufs.dWeightHh, P), [R, P]),
      };
      if (this.useBias) {
        params.bias_ih_l0 = Tensor.from(fold(bufs.dBiasIh!, 1), [R]);
        params.bias_hh_l0 = Tensor.from(fold(bufs.dBiasHh!, 1), [R]);
      }
      if (bufs.dPeephole) params.weight_peephole_l0 = Tensor.from(bufs.dPeephole, [3 * H]);
      if (bufs.dWeightHr) params.weight_hr_l0 = Tensor.from(bufs.dWeightHr, [P, H]);
      if (bufs.dWeightGr) params.weight_gr_l0 = Tensor.from(bufs.dWeightGr, [3 * H, 3 * H]);
      const initialState = [Tensor.from(bufs.dh0, [batch, P])];
      if (bufs.dc0) initialState.push(Tensor.from(bufs.dc0, [batch, H]));
      return { input: Tensor.from(this.transpose(bufs.dx, batch, steps, I, true), [batch, steps, I]), initialState, params };
    };
    return { cfg, bufs, finish };
  }

  /**
   * Backpropagation through time for a training run. dOutput matches `output` (or null when only the
   * final states carry gradient); options.dStates match `states`.
   */
  backward(run: TrainingRun, dOutput: Tensor | null, options?: BackwardOptions): Gradients {
    const { cfg, bufs, finish } = this.prepareBackward(run, dOutput, options, 'backward');
    native.backward(cfg, bufs);
    return finish();
  }

  /** Same as backward, computed on the libuv thread pool. */
  async backwardAsync(run: TrainingRun, dOutput: Tensor | null, options?: BackwardOptions): Promise<Gradients> {
    const { cfg, bufs, finish } = this.prepareBackward(run, dOutput, options, 'backwardAsync');
    await native.backwardAsync(cfg, bufs);
    return finish();
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
  protected readonly cell: NativeCell = 'rnn_tanh';
  protected readonly gates = 1;
  protected readonly stateCount = 1;
  constructor(options: SimpleRNNOptions) {
    super(checkOptions(options, 'options', SIMPLE_RNN_OPTIONS, 'SimpleRNN'));
    this.activation = options.activation ?? 'tanh';
    this.cellOptions = { candidateActivation: resolveActivation(this.activation, 'options.activation') };
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
  protected readonly stateCount = 2;
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
  protected readonly stateCount = 1;
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
