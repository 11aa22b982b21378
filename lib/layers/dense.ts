// Fully connected layer y = act(x Wᵀ + b) over the last axis: [batch, features] or [batch, steps,
// features] (every step in one GEMM). Parameters use PyTorch nn.Linear's names and layout (weight
// [units, inputSize], bias [units]); initialisation is Keras's default (Glorot-uniform weight, zero
// bias). The products run on OpenBLAS (native.gemm).
import { bufferProblem, checkElementCount, checkTensor, describeBufferProblem, elementCount, formatShape, Tensor, type DType, type TensorData } from '../tensor.js';
import { glorotUniform, Random } from '../init.js';
import { native } from '../native.js';
import { activateInPlace, activationGradInPlace, checkActivation, type ElementwiseActivation } from './elementwise.js';
import { loadParameters, type LoadStateDictOptions } from '../params.js';
import { checkOptions, dimension, dtypeOption, flag, optionNames, seedOption, show } from '../options.js';

export type DenseActivation = ElementwiseActivation;

export interface DenseOptions {
  /** Features of the input (its last dimension); optional inside a Sequential (see build). */
  inputSize?: number;
  /** Output features. */
  units: number;
  /** Applied after the affine map (default 'linear'); 'softmax' normalises each row. */
  activation?: DenseActivation;
  /** Whether the layer has a bias (default true). */
  useBias?: boolean;
  /** Seed for the initial weights: a safe integer (used modulo 2^32); default a random one. */
  seed?: number;
  /** Scalar type of parameters and data (default 'float32'; 'float64' exists for exact checks). */
  dtype?: DType;
}

export interface DenseForwardOptions {
  /** Keep what backward() needs (default false). */
  training?: boolean;
}

/** What a training forward keeps for backward() (its own copies, so later changes to x do not matter). */
export interface DenseRun {
  readonly layer: Dense;
  /** Rows of the input (batch, or batch·steps). */
  readonly batch: number;
  /** The input's shape. */
  readonly shape: readonly number[];
  /** @internal The activation this run applied. */ readonly activation: DenseActivation;
  /** @internal Copy of the input, [batch, inputSize]. */ readonly x: TensorData;
  /** @internal Copy of the activation's output, [batch, units]; absent for 'linear'. */ readonly y?: TensorData;
}

export interface DenseForwardResult {
  /** [batch, units] or [batch, steps, units]. */
  output: Tensor;
  /** Present when forward ran with training: true. */
  run?: DenseRun;
}

export interface DenseGradients {
  /** dLoss/dInput, the input's shape. */
  input: Tensor;
  /** dLoss/dParameter, keyed like stateDict(): weight [units, inputSize] and, with a bias, bias [units]. */
  params: Record<string, Tensor>;
}

const DENSE_OPTIONS = optionNames<DenseOptions>({ inputSize: true, units: true, activation: true, useBias: true, seed: true, dtype: true });
const FORWARD_OPTIONS = optionNames<DenseForwardOptions>({ training: true });

/** The runs each Dense layer issued (frozen): backward takes no other object, so batch and x are its own. */
const issuedRuns = new WeakMap<object, Dense>();

export class Dense {
  readonly className = 'Dense';
  /** Input features (0 until built). */
  readonly inputSize: number = 0;
  readonly units: number;
  readonly activation: DenseActivation;
  readonly useBias: boolean;
  readonly dtype: DType;
  /** The options this layer was made with (build() adds inputSize). */
  options: Readonly<DenseOptions>;
  private weight!: Tensor;
  private bias: Tensor | undefined;
  private readonly seed: number | undefined;

  constructor(options: DenseOptions) {
    checkOptions(options, 'options', DENSE_OPTIONS, 'Dense');
    this.units = dimension(options.units, 'options.units');
    this.activation = options.activation === undefined ? 'linear' : checkActivation(options.activation, 'options.activation');
    this.useBias = flag(options.useBias, 'options.useBias', true);
    this.dtype = dtypeOption(options.dtype, 'options.dtype');
    this.seed = seedOption(options.seed, 'options.seed');
    this.options = Object.freeze({ ...options });
    if (options.inputSize !== undefined) this.build(dimension(options.inputSize, 'options.inputSize'));
  }

  /** Whether the parameters exist (inputSize known). */
  get built(): boolean {
    return this.inputSize > 0;
  }

  /**
   * Creates the parameters for `inputSize` features (a Sequential calls it with the previous layer's
   * output size); `seed` seeds a layer made without options.seed. A built layer accepts only its size.
   */
  build(inputSize: number, seed?: number): void {
    if (this.built) {
      if (inputSize !== this.inputSize) throw new TypeError(`Dense.build: the layer is built for inputSize ${this.inputSize}, got ${inputSize}`);
      return;
    }
    dimension(inputSize, 'Dense.build: inputSize');
    checkElementCount(this.units * inputSize, `options.inputSize=${inputSize}, options.units=${this.units}`, `parameter weight ${formatShape([this.units, inputSize])}`);
    (this as { inputSize: number }).inputSize = inputSize;
    const used = this.seed ?? seed;
    this.options = Object.freeze({ ...this.options, inputSize, ...(used !== undefined ? { seed: used } : {}) });
    this.weight = Tensor.zeros([this.units, inputSize], this.dtype);
    glorotUniform(this.weight.data, this.units, inputSize, new Random(this.seed ?? seed));
    this.bias = this.useBias ? Tensor.zeros([this.units], this.dtype) : undefined;
  }

  /** Parameter shapes by name (PyTorch nn.Linear names and layout). */
  parameterShapes(): Record<string, number[]> {
    const shapes: Record<string, number[]> = { weight: [this.units, this.inputSize] };
    if (this.useBias) shapes.bias = [this.units];
    return shapes;
  }

  /** The parameters, live (not copies): weight [units, inputSize] and, with a bias, bias [units]. */
  stateDict(): Record<string, Tensor> {
    if (!this.built) return {};
    return this.bias ? { weight: this.weight, bias: this.bias } : { weight: this.weight };
  }

  /** Copies parameters in, checking names, shapes and that every value is finite (all or nothing). */
  loadStateDict(dict: Record<string, Tensor>, options?: LoadStateDictOptions): void {
    this.checkBuilt('Dense.loadStateDict');
    loadParameters(this.className, this.stateDict(), this.parameterShapes(), dict, options);
  }

  private checkBuilt(where: string): void {
    if (!this.built) throw new TypeError(`${where}: the layer is not built: give options.inputSize, call build(inputSize), or use it inside a Sequential`);
  }

  /** y = act(x Wᵀ + b) over the last axis. x: [batch, inputSize] or [batch, steps, inputSize] → [..., units]. */
  forward(x: Tensor, options?: DenseForwardOptions): DenseForwardResult {
    return this.compute(x, options, true);
  }

  /** @internal forward without the activation (a model fusing softmax into its loss); backward then skips it too. */
  forwardLogits(x: Tensor, options?: DenseForwardOptions): DenseForwardResult {
    return this.compute(x, options, false);
  }

  private compute(x: Tensor, options: DenseForwardOptions | undefined, activate: boolean): DenseForwardResult {
    const where = `${this.className}.forward`;
    this.checkBuilt(where);
    const I = this.inputSize, U = this.units;
    const expected = `[batch, inputSize=${I}] or [batch, steps, inputSize=${I}]`;
    if (!Tensor.isTensor(x)) {
      throw new TypeError(`${where}: input must be a Tensor of shape ${expected}, got ${x === null ? 'null' : typeof x}`);
    }
    if ((x.rank !== 2 && x.rank !== 3) || x.shape[x.rank - 1] !== I || x.shape.some((d) => d < 1)) {
      throw new RangeError(`${where}: input must have shape ${expected} with batch (and steps) >= 1, got ${formatShape(x.shape)}`);
    }
    const lead = x.shape.slice(0, -1);
    const rows = lead.reduce((a, b) => a * b, 1);
    checkTensor(x, `${where}: input`, x.shape, x.rank === 2 ? ['batch', 'inputSize'] : ['batch', 'steps', 'inputSize'], this.dtype);
    if (options !== undefined) checkOptions(options, `${where}: options`, FORWARD_OPTIONS);
    const training = flag(options?.training, `${where}: options.training`, false);
    this.checkParameters(where);
    const y = this.newArray(rows * U);
    const b = this.bias?.data;
    if (b) for (let r = 0; r < rows; r++) y.set(b, r * U);
    native.gemm({ transB: true, m: rows, n: U, k: I, beta: b ? 1 : 0 }, { a: x.data, b: this.weight.data, c: y });
    const act = activate ? this.activation : 'linear';
    activateInPlace(act, y, U);
    const result: DenseForwardResult = { output: Tensor.from(y, [...lead, U]) };
    if (training) {
      const run: DenseRun = Object.freeze({
        layer: this, batch: rows, shape: Object.freeze([...x.shape]), x: x.data.slice(), activation: act, y: act === 'linear' ? undefined : y.slice(),
      });
      issuedRuns.set(run, this);
      result.run = run;
    }
    return result;
  }

  /** Gradients for a training run. dOutput: dLoss/dOutput, the output's shape. */
  backward(run: DenseRun, dOutput: Tensor): DenseGradients {
    const where = `${this.className}.backward`;
    if (typeof run !== 'object' || run === null || issuedRuns.get(run) !== this) {
      throw new TypeError(
        `${where}: run must be the .run of a forward(x, { training: true }) of this layer, got ${typeof run === 'object' && run !== null ? 'an object this layer did not issue (not a training run of this layer)' : show(run)}`,
      );
    }
    const { batch: rows, x, shape } = run;
    const I = this.inputSize, U = this.units;
    const outShape = [...shape.slice(0, -1), U];
    const names = shape.length === 2 ? ['batch', 'units'] : ['batch', 'steps', 'units'];
    const dz = checkTensor(dOutput, `${where}: dOutput`, outShape, names, this.dtype).data.slice();
    activationGradInPlace(run.activation, dz, run.y, U);
    this.checkParameters(where);
    const dw = this.newArray(U * I);
    native.gemm({ transA: true, m: U, n: I, k: rows }, { a: dz, b: x, c: dw });
    const dx = this.newArray(rows * I);
    native.gemm({ m: rows, n: I, k: U }, { a: dz, b: this.weight.data, c: dx });
    const params: Record<string, Tensor> = { weight: Tensor.from(dw, [U, I]) };
    if (this.useBias) {
      const db = new Float64Array(U);
      for (let r = 0; r < rows; r++) for (let u = 0; u < U; u++) db[u] += dz[r * U + u];
      params.bias = Tensor.from(this.dtype === 'float64' ? db : Float32Array.from(db), [U]);
    }
    return { input: Tensor.from(dx, [...shape]), params };
  }

  /** Throws a TypeError naming the parameter whose memory is gone (a detached buffer). */
  private checkParameters(where: string): void {
    for (const [name, t] of Object.entries(this.stateDict())) {
      const problem = elementCount(t.data) === 0 ? bufferProblem(t.data) : undefined;
      if (problem) throw new TypeError(`${where}: parameter ${name}: ${describeBufferProblem(problem)}`);
    }
  }

  private newArray(n: number): TensorData {
    return this.dtype === 'float64' ? new Float64Array(n) : new Float32Array(n);
  }
}
