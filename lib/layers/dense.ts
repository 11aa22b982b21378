// Fully connected layer y = act(x Wᵀ + b) on [batch, features] tensors. Parameters use PyTorch
// nn.Linear's names and layout (weight [units, inputSize], bias [units]); initialisation is Keras's
// default (Glorot-uniform weight, zero bias). Plain TypeScript, row-major inner loops, float64 sums.
import { bufferProblem, checkElementCount, checkTensor, describeBufferProblem, elementCount, formatShape, Tensor, type DType, type TensorData } from '../tensor.js';
import { glorotUniform, Random } from '../init.js';
import { loadParameters, type LoadStateDictOptions } from '../params.js';
import { checkOptions, dimension, flag, optionNames, seedOption, show } from '../options.js';

export type DenseActivation = 'linear' | 'sigmoid' | 'tanh' | 'relu' | 'softmax';

const ACTIVATIONS: readonly DenseActivation[] = ['linear', 'sigmoid', 'tanh', 'relu', 'softmax'];

export interface DenseOptions {
  /** Features of the input (its last dimension). */
  inputSize: number;
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
  readonly batch: number;
  /** @internal Copy of the input, [batch, inputSize]. */ readonly x: TensorData;
  /** @internal Copy of the activation's output, [batch, units]; absent for 'linear'. */ readonly y?: TensorData;
}

export interface DenseForwardResult {
  /** [batch, units]. */
  output: Tensor;
  /** Present when forward ran with training: true. */
  run?: DenseRun;
}

export interface DenseGradients {
  /** dLoss/dInput, [batch, inputSize]. */
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
  readonly inputSize: number;
  readonly units: number;
  readonly activation: DenseActivation;
  readonly useBias: boolean;
  readonly dtype: DType;
  private readonly weight: Tensor;
  private readonly bias: Tensor | undefined;

  constructor(options: DenseOptions) {
    checkOptions(options, 'options', DENSE_OPTIONS, 'Dense');
    this.inputSize = dimension(options.inputSize, 'options.inputSize');
    this.units = dimension(options.units, 'options.units');
    this.activation = options.activation ?? 'linear';
    if (!ACTIVATIONS.includes(this.activation)) {
      throw new TypeError(`options.activation: expected one of ${ACTIVATIONS.map((a) => `'${a}'`).join(', ')}, got ${show(options.activation)}`);
    }
    this.useBias = flag(options.useBias, 'options.useBias', true);
    this.dtype = options.dtype ?? 'float32';
    if (this.dtype !== 'float32' && this.dtype !== 'float64') {
      throw new TypeError(`options.dtype: expected 'float32' or 'float64', got ${show(options.dtype)}`);
    }
    const seed = seedOption(options.seed, 'options.seed');
    checkElementCount(this.units * this.inputSize, `options.inputSize=${this.inputSize}, options.units=${this.units}`, `parameter weight ${formatShape([this.units, this.inputSize])}`);
    this.weight = Tensor.zeros([this.units, this.inputSize], this.dtype);
    glorotUniform(this.weight.data, this.units, this.inputSize, new Random(seed));
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
    return this.bias ? { weight: this.weight, bias: this.bias } : { weight: this.weight };
  }

  /** Copies parameters in, checking names, shapes and that every value is finite (all or nothing). */
  loadStateDict(dict: Record<string, Tensor>, options?: LoadStateDictOptions): void {
    loadParameters(this.className, this.stateDict(), this.parameterShapes(), dict, options);
  }

  /** y = act(x Wᵀ + b). x: [batch, inputSize] → output [batch, units]. */
  forward(x: Tensor, options?: DenseForwardOptions): DenseForwardResult {
    const where = `${this.className}.forward`;
    const I = this.inputSize, U = this.units;
    if (!Tensor.isTensor(x)) {
      throw new TypeError(`${where}: input must be a Tensor of shape [batch, inputSize=${I}], got ${x === null ? 'null' : typeof x}`);
    }
    if (x.rank !== 2 || x.shape[1] !== I || x.shape[0] < 1) {
      throw new RangeError(`${where}: input must have shape [batch, inputSize=${I}] with batch >= 1, got ${formatShape(x.shape)}`);
    }
    const batch = x.shape[0];
    checkTensor(x, `${where}: input`, [batch, I], ['batch', 'inputSize'], this.dtype);
    if (options !== undefined) checkOptions(options, `${where}: options`, FORWARD_OPTIONS);
    const training = flag(options?.training, `${where}: options.training`, false);
    const xs = x.data, w = this.weight.data, b = this.bias?.data;
    this.checkParameters(where);
    const y = this.newArray(batch * U);
    for (let r = 0; r < batch; r++) {
      const xo = r * I, yo = r * U;
      for (let u = 0; u < U; u++) {
        const wo = u * I;
        let s = b ? b[u] : 0;
        for (let i = 0; i < I; i++) s += xs[xo + i] * w[wo + i];
        y[yo + u] = s;
      }
    }
    this.activate(y, batch);
    const result: DenseForwardResult = { output: Tensor.from(y, [batch, U]) };
    if (training) {
      const run: DenseRun = Object.freeze({ layer: this, batch, x: xs.slice(), y: this.activation === 'linear' ? undefined : y.slice() });
      issuedRuns.set(run, this);
      result.run = run;
    }
    return result;
  }

  /** Gradients for a training run. dOutput: dLoss/dOutput, [batch, units]. */
  backward(run: DenseRun, dOutput: Tensor): DenseGradients {
    const where = `${this.className}.backward`;
    if (typeof run !== 'object' || run === null || issuedRuns.get(run) !== this) {
      throw new TypeError(
        `${where}: run must be the .run of a forward(x, { training: true }) of this layer, got ${typeof run === 'object' && run !== null ? 'an object this layer did not issue (not a training run of this layer)' : show(run)}`,
      );
    }
    const { batch, x } = run;
    const I = this.inputSize, U = this.units;
    const d = checkTensor(dOutput, `${where}: dOutput`, [batch, U], ['batch', 'units'], this.dtype).data;
    const dz = this.preActivationGrad(d, run.y, batch);
    this.checkParameters(where);
    const w = this.weight.data;
    const dw = new Float64Array(U * I);
    const db = new Float64Array(U);
    const dx = new Float64Array(batch * I);
    for (let r = 0; r < batch; r++) {
      const xo = r * I, zo = r * U;
      for (let u = 0; u < U; u++) {
        const g = dz[zo + u];
        if (g === 0) continue;
        db[u] += g;
        const wo = u * I;
        for (let i = 0; i < I; i++) {
          dw[wo + i] += g * x[xo + i];
          dx[xo + i] += g * w[wo + i];
        }
      }
    }
    const params: Record<string, Tensor> = { weight: Tensor.from(this.fromFloat64(dw), [U, I]) };
    if (this.useBias) params.bias = Tensor.from(this.fromFloat64(db), [U]);
    return { input: Tensor.from(this.fromFloat64(dx), [batch, I]), params };
  }

  /** Applies the activation in place to pre-activations z: [batch, units]. */
  private activate(z: TensorData, batch: number): void {
    const n = z.length;
    switch (this.activation) {
      case 'linear':
        return;
      case 'sigmoid':
        for (let k = 0; k < n; k++) z[k] = 1 / (1 + Math.exp(-z[k]));
        return;
      case 'tanh':
        for (let k = 0; k < n; k++) z[k] = Math.tanh(z[k]);
        return;
      case 'relu':
        for (let k = 0; k < n; k++) z[k] = z[k] > 0 ? z[k] : 0;
        return;
      case 'softmax': {
        const U = this.units;
        for (let r = 0; r < batch; r++) {
          const o = r * U;
          let max = -Infinity;
          for (let u = 0; u < U; u++) max = Math.max(max, z[o + u]);
          let sum = 0;
          for (let u = 0; u < U; u++) sum += z[o + u] = Math.exp(z[o + u] - max);
          for (let u = 0; u < U; u++) z[o + u] /= sum;
        }
        return;
      }
    }
  }

  /** dLoss/dz from dLoss/dy = d and the activation's output y (both [batch, units]). */
  private preActivationGrad(d: TensorData, y: TensorData | undefined, batch: number): Float64Array {
    const dz = Float64Array.from(d);
    if (this.activation === 'linear') return dz;
    const a = y!;
    const n = dz.length;
    switch (this.activation) {
      case 'sigmoid':
        for (let k = 0; k < n; k++) dz[k] *= a[k] * (1 - a[k]);
        break;
      case 'tanh':
        for (let k = 0; k < n; k++) dz[k] *= 1 - a[k] * a[k];
        break;
      case 'relu':
        for (let k = 0; k < n; k++) if (!(a[k] > 0)) dz[k] = 0;
        break;
      case 'softmax': {
        // dz_i = y_i (d_i - Σ_j d_j y_j) per row.
        const U = this.units;
        for (let r = 0; r < batch; r++) {
          const o = r * U;
          let dot = 0;
          for (let u = 0; u < U; u++) dot += dz[o + u] * a[o + u];
          for (let u = 0; u < U; u++) dz[o + u] = a[o + u] * (dz[o + u] - dot);
        }
        break;
      }
    }
    return dz;
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

  private fromFloat64(a: Float64Array): TensorData {
    return this.dtype === 'float64' ? a : Float32Array.from(a);
  }
}
