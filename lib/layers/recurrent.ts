// Recurrent layers over whole sequences: SimpleRNN, LSTM and GRU. Batch-first at the API (like
// tfjs/Keras), time-major inside (converted once here); parameters are a PyTorch-style state dict.
import { native, type NativeArray, type NativeCell, type NativeConfig } from '../native.js';
import { checkTensor, formatShape, Tensor, type DType, type TensorData } from '../tensor.js';
import { glorotUniform, orthogonalBlocks, Random } from '../init.js';
import { loadParameters } from '../params.js';

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
  /** Seed for the initial weights. */
  seed?: number;
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

type ParamName = 'weight_ih_l0' | 'weight_hh_l0' | 'bias_ih_l0' | 'bias_hh_l0';

function positiveInt(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) {
    throw new TypeError(`${what}: expected a positive integer, got ${String(v)}`);
  }
  return v;
}

export abstract class Recurrent {
  readonly inputSize: number;
  readonly units: number;
  readonly returnSequences: boolean;
  readonly returnState: boolean;
  readonly goBackwards: boolean;
  readonly useBias: boolean;
  readonly dtype: DType;
  protected readonly params: Map<ParamName, Tensor> = new Map();

  protected abstract readonly cell: NativeCell;
  protected abstract readonly gates: number;
  protected abstract readonly stateCount: number;
  protected readonly linearBeforeReset: boolean = false;
  abstract readonly className: string;

  constructor(options: RecurrentOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('options: expected an object');
    this.inputSize = positiveInt(options.inputSize, 'options.inputSize');
    this.units = positiveInt(options.units, 'options.units');
    this.returnSequences = options.returnSequences ?? false;
    this.returnState = options.returnState ?? false;
    this.goBackwards = options.goBackwards ?? false;
    this.useBias = options.useBias ?? true;
    this.dtype = options.dtype ?? 'float32';
    if (this.dtype !== 'float32' && this.dtype !== 'float64') {
      throw new TypeError(`options.dtype: expected 'float32' or 'float64', got ${String(options.dtype)}`);
    }
  }

  /** Creates the parameters with Keras's default initialisers; subclasses call it at the end of their constructor. */
  protected initParameters(seed: number | undefined): void {
    const rng = new Random(seed);
    const G = this.gates, H = this.units, I = this.inputSize;
    const wIh = Tensor.zeros([G * H, I], this.dtype);
    for (let g = 0; g < G; g++) glorotUniform(wIh.data.subarray(g * H * I, (g + 1) * H * I), H, I, rng);
    const wHh = Tensor.zeros([G * H, H], this.dtype);
    orthogonalBlocks(wHh.data, G, H, rng);
    this.params.set('weight_ih_l0', wIh);
    this.params.set('weight_hh_l0', wHh);
    if (this.useBias) {
      const bIh = Tensor.zeros([G * H], this.dtype);
      this.initBias(bIh.data);
      this.params.set('bias_ih_l0', bIh);
      this.params.set('bias_hh_l0', Tensor.zeros([G * H], this.dtype));
    }
  }

  /** Sets the input-side bias at creation (zeros; LSTM puts its forget bias here). */
  protected initBias(_bias: TensorData): void {}

  /** Parameter shapes by name (PyTorch names and layouts, gate order as PyTorch). */
  parameterShapes(): Record<string, number[]> {
    const G = this.gates, H = this.units;
    const shapes: Record<string, number[]> = { weight_ih_l0: [G * H, this.inputSize], weight_hh_l0: [G * H, H] };
    if (this.useBias) {
      shapes.bias_ih_l0 = [G * H];
      shapes.bias_hh_l0 = [G * H];
    }
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
  loadStateDict(dict: Record<string, Tensor>, { strict = true }: { strict?: boolean } = {}): void {
    loadParameters(this.className, this.stateDict(), this.parameterShapes(), dict, strict);
  }


  protected nativeConfig(batch: number, steps: number): NativeConfig {
    return {
      cell: this.cell,
      linearBeforeReset: this.linearBeforeReset,
      reverse: this.goBackwards,
      steps,
      batch,
      inputSize: this.inputSize,
      hiddenSize: this.units,
    };
  }

  private get p(): { wIh: NativeArray; wHh: NativeArray; bIh?: NativeArray; bHh?: NativeArray } {
    return {
      wIh: this.params.get('weight_ih_l0')!.data,
      wHh: this.params.get('weight_hh_l0')!.data,
      bIh: this.params.get('bias_ih_l0')?.data,
      bHh: this.params.get('bias_hh_l0')?.data,
    };
  }

  private newArray(n: number): TensorData {
    return this.dtype === 'float64' ? new Float64Array(n) : new Float32Array(n);
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
    if (!(x instanceof Tensor)) {
      throw new TypeError(`${where}: input must be a Tensor of shape [batch, steps, inputSize=${this.inputSize}], got ${x === null ? 'null' : typeof x}`);
    }
    if (x.rank !== 3 || x.shape[2] !== this.inputSize || x.shape[0] < 1 || x.shape[1] < 1) {
      throw new RangeError(
        `${where}: input must have shape [batch, steps, inputSize=${this.inputSize}] with batch, steps >= 1, got ${formatShape(x.shape)}`,
      );
    }
    const [batch, steps] = x.shape as [number, number, number];
    checkTensor(x, `${where}: input`, [batch, steps, this.inputSize], ['batch', 'steps', 'inputSize'], this.dtype);
    if (options !== undefined && (typeof options !== 'object' || options === null)) {
      throw new TypeError(`${where}: options must be an object`);
    }
    const init = options?.initialState;
    let h0: NativeArray | undefined;
    let c0: NativeArray | undefined;
    if (init !== undefined && init !== null) {
      if (!Array.isArray(init) || init.length !== this.stateCount) {
        throw new TypeError(
          `${where}: initialState must be an array of ${this.stateCount} Tensor(s) ${this.stateCount === 2 ? '[h0, c0]' : '[h0]'}, each [batch=${batch}, units=${this.units}]`,
        );
      }
      const names = ['h0', 'c0'];
      const states = init.map((s, i) =>
        checkTensor(s, `${where}: initialState[${i}] (${names[i]})`, [batch, this.units], ['batch', 'units'], this.dtype).data,
      );
      [h0, c0] = states;
    }
    const cfg = this.nativeConfig(batch, steps);
    const training = options?.training ?? false;
    const xTime = this.transpose(x.data, batch, steps, this.inputSize, false);
    const wantSeq = this.returnSequences;
    const p = this.p;
    const bufs = {
      x: xTime,
      weightIh: p.wIh,
      weightHh: p.wHh,
      biasIh: p.bIh,
      biasHh: p.bHh,
      h0,
      c0,
      y: wantSeq || training ? this.newArray(steps * batch * this.units) : undefined,
      hN: this.newArray(batch * this.units),
      cN: this.stateCount === 2 ? this.newArray(batch * this.units) : undefined,
      workspace: training ? this.newArray(native.workspaceSize(cfg)) : undefined,
    };
    const finish = (): ForwardResult => {
      const H = this.units;
      const output = wantSeq
        ? Tensor.from(this.transpose(bufs.y!, batch, steps, H, true, this.goBackwards), [batch, steps, H])
        : Tensor.from(bufs.hN.slice(), [batch, H]);
      const states: Tensor[] = [];
      if (this.returnState) {
        states.push(Tensor.from(bufs.hN, [batch, H]));
        if (bufs.cN) states.push(Tensor.from(bufs.cN, [batch, H]));
      }
      const result: ForwardResult = { output, states };
      if (training) {
        result.run = { layer: this, batch, steps, xTime, workspace: bufs.workspace!, hadInitialState: h0 !== undefined };
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
    if (typeof run !== 'object' || run === null || (run as TrainingRun).layer !== this) {
      throw new TypeError(`${where}: run must be the .run of a forward(x, { training: true }) of this layer`);
    }
    const r = run as TrainingRun;
    const { batch, steps } = r;
    const H = this.units;
    const cfg = this.nativeConfig(batch, steps);
    let dy: NativeArray | undefined;
    let dhN: NativeArray | undefined;
    let dcN: NativeArray | undefined;
    if (dOutput !== null && dOutput !== undefined) {
      if (this.returnSequences) {
        const d = checkTensor(dOutput, `${where}: dOutput`, [batch, steps, H], ['batch', 'steps', 'units'], this.dtype);
        dy = this.transpose(d.data, batch, steps, H, false, this.goBackwards);
      } else {
        // The last output is the final h: its gradient joins dh_N.
        dhN = checkTensor(dOutput, `${where}: dOutput`, [batch, H], ['batch', 'units'], this.dtype).data.slice();
      }
    }
    const dStates = options?.dStates ?? [];
    if (!Array.isArray(dStates) || dStates.length > this.stateCount) {
      throw new TypeError(`${where}: options.dStates must be an array of at most ${this.stateCount} Tensor(s)`);
    }
    dStates.forEach((s, i) => {
      if (s === null || s === undefined) return;
      const d = checkTensor(s, `${where}: dStates[${i}]`, [batch, H], ['batch', 'units'], this.dtype).data;
      if (i === 0) {
        if (dhN) for (let k = 0; k < d.length; k++) dhN[k] += d[k];
        else dhN = d;
      } else dcN = d;
    });
    const G = this.gates, I = this.inputSize;
    const p = this.p;
    const bufs = {
      x: r.xTime,
      weightIh: p.wIh,
      weightHh: p.wHh,
      workspace: r.workspace,
      dy,
      dhN,
      dcN,
      dx: this.newArray(steps * batch * I),
      dh0: this.newArray(batch * H),
      dc0: this.stateCount === 2 ? this.newArray(batch * H) : undefined,
      dWeightIh: this.newArray(G * H * I),
      dWeightHh: this.newArray(G * H * H),
      dBiasIh: this.useBias ? this.newArray(G * H) : undefined,
      dBiasHh: this.useBias ? this.newArray(G * H) : undefined,
    };
    const finish = (): Gradients => {
      const params: Record<string, Tensor> = {
        weight_ih_l0: Tensor.from(bufs.dWeightIh, [G * H, I]),
        weight_hh_l0: Tensor.from(bufs.dWeightHh, [G * H, H]),
      };
      if (this.useBias) {
        params.bias_ih_l0 = Tensor.from(bufs.dBiasIh!, [G * H]);
        params.bias_hh_l0 = Tensor.from(bufs.dBiasHh!, [G * H]);
      }
      const initialState = [Tensor.from(bufs.dh0, [batch, H])];
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
  /** 'tanh' (default) or 'relu'. */
  activation?: 'tanh' | 'relu';
}

/** h_t = act(W x_t + b_W + R h_{t-1} + b_R). */
export class SimpleRNN extends Recurrent {
  readonly className = 'SimpleRNN';
  readonly activation: 'tanh' | 'relu';
  protected readonly cell: NativeCell;
  protected readonly gates = 1;
  protected readonly stateCount = 1;
  constructor(options: SimpleRNNOptions) {
    super(options);
    this.activation = options.activation ?? 'tanh';
    if (this.activation !== 'tanh' && this.activation !== 'relu') {
      throw new TypeError(`options.activation: expected 'tanh' or 'relu', got ${String(options.activation)}`);
    }
    this.cell = this.activation === 'relu' ? 'rnn_relu' : 'rnn_tanh';
    this.initParameters(options.seed);
  }
}

export interface LSTMOptions extends RecurrentOptions {
  /** Initialise the forget-gate bias to 1 (Jozefowicz et al. 2015; default true). */
  unitForgetBias?: boolean;
}

/** LSTM without peepholes, PyTorch gate order i, f, g, o; states [h, c]. */
export class LSTM extends Recurrent {
  readonly className = 'LSTM';
  protected readonly cell = 'lstm';
  protected readonly gates = 4;
  protected readonly stateCount = 2;
  private readonly unitForgetBias: boolean;
  constructor(options: LSTMOptions) {
    super(options);
    this.unitForgetBias = options.unitForgetBias ?? true;
    this.initParameters(options.seed);
  }
  protected override initBias(bias: TensorData): void {
    if (this.unitForgetBias) bias.fill(1, this.units, 2 * this.units);
  }
}

export interface GRUOptions extends RecurrentOptions {
  /**
   * true (default): linear before reset, n = tanh(W_n x + b_Wn + r ⊙ (R_n h + b_Rn)) — PyTorch, cuDNN,
   * ONNX linear_before_reset=1, Keras reset_after=True. false: reset before, n = tanh(W_n x + R_n (r ⊙ h) + b)
   * — Cho et al. 2014, tfjs.
   */
  resetAfter?: boolean;
}

/** GRU, PyTorch gate order r, z, n. */
export class GRU extends Recurrent {
  readonly className = 'GRU';
  protected readonly cell = 'gru';
  protected readonly gates = 3;
  protected readonly stateCount = 1;
  protected override readonly linearBeforeReset: boolean;
  constructor(options: GRUOptions) {
    super(options);
    this.linearBeforeReset = options.resetAfter ?? true;
    this.initParameters(options.seed);
  }
}
