// The layers around recurrent ones in a model (Keras's names and semantics): Embedding, Dropout,
// RepeatVector, Masking, Activation and TimeDistributed(Dense). Each has forward/backward in the
// layer API (explicit runs, like Dense and the recurrent layers), is batch-first, and can be built
// lazily from the previous layer's output size inside a Sequential.
import { checkElementCount, checkTensor, formatShape, Tensor, type DType, type TensorData } from '../tensor.js';
import { Random } from '../init.js';
import { loadParameters, type LoadStateDictOptions } from '../params.js';
import { checkOptions, dimension, dtypeOption, flag, numberIn, optionNames, seedOption, show } from '../options.js';
import { activateInPlace, activationGradInPlace, checkActivation, type ElementwiseActivation } from './elementwise.js';
import { Dense, type DenseRun } from './dense.js';

function notTensor(where: string, expected: string, x: unknown): TypeError {
  return new TypeError(`${where}: input must be a Tensor of shape ${expected}, got ${x === null ? 'null' : typeof x}`);
}

/** Runs each layer issued (backward takes no other object). */
const issued = new WeakMap<object, object>();
function issue<T extends object>(layer: object, run: T): T {
  Object.freeze(run);
  issued.set(run, layer);
  return run;
}
function checkRun(layer: { className: string }, run: unknown, where: string): void {
  if (typeof run !== 'object' || run === null || issued.get(run) !== layer) {
    throw new TypeError(`${where}: run must be the .run of a forward(x, { training: true }) of this ${layer.className} layer, got ${typeof run === 'object' && run !== null ? 'an object this layer did not issue' : show(run)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Embedding

export interface EmbeddingOptions {
  /** Vocabulary size: ids are integers in [0, inputDim). */
  inputDim: number;
  /** Features of each embedding vector. */
  outputDim: number;
  /**
   * Id 0 is padding (Keras mask_zero): forward returns the mask (and, when every sequence is padded
   * at its end, the lengths) that the recurrent layers of a model consume. Default false.
   */
  maskZero?: boolean;
  /** Seed of the initial weights (uniform in [−0.05, 0.05], Keras's default); default a random one. */
  seed?: number;
  dtype?: DType;
}

export interface EmbeddingRun {
  readonly batch: number;
  readonly steps: number;
  /** @internal The ids, [batch·steps]. */ readonly ids: Int32Array;
}

export interface EmbeddingResult {
  /** [batch, steps, outputDim]. */
  output: Tensor;
  /** With maskZero: 1 where the id is not 0, [batch·steps] row-major. */
  mask?: Uint8Array;
  run?: EmbeddingRun;
}

const EMBEDDING_OPTIONS = optionNames<EmbeddingOptions>({ inputDim: true, outputDim: true, maskZero: true, seed: true, dtype: true });
const TRAINING_OPTION = optionNames<{ training?: boolean }>({ training: true });

/** Looks up a vector per id. Parameter `weight` [inputDim, outputDim] (PyTorch nn.Embedding). */
export class Embedding {
  readonly className = 'Embedding';
  readonly inputDim: number;
  readonly outputDim: number;
  readonly maskZero: boolean;
  readonly dtype: DType;
  readonly options: Readonly<EmbeddingOptions>;
  private readonly weight: Tensor;

  constructor(options: EmbeddingOptions) {
    checkOptions(options, 'options', EMBEDDING_OPTIONS, 'Embedding');
    this.inputDim = dimension(options.inputDim, 'options.inputDim');
    this.outputDim = dimension(options.outputDim, 'options.outputDim');
    this.maskZero = flag(options.maskZero, 'options.maskZero', false);
    this.dtype = dtypeOption(options.dtype, 'options.dtype');
    this.options = Object.freeze({ ...options });
    checkElementCount(this.inputDim * this.outputDim, 'options.inputDim·options.outputDim', `parameter weight ${formatShape([this.inputDim, this.outputDim])}`);
    this.weight = Tensor.zeros([this.inputDim, this.outputDim], this.dtype);
    this.initWeights(seedOption(options.seed, 'options.seed'));
  }

  private initWeights(seed: number | undefined): void {
    const rng = new Random(seed);
    const w = this.weight.data;
    for (let i = 0; i < w.length; i++) w[i] = rng.uniform(-0.05, 0.05);
  }

  /** @internal A model with a seed re-initialises (once, at its build) a layer made without one. */
  reseed(seed: number): void {
    if (this.options.seed === undefined && !this.reseeded) {
      this.initWeights(seed);
      (this as { options: Readonly<EmbeddingOptions> }).options = Object.freeze({ ...this.options, seed });
    }
    this.reseeded = true;
  }
  private reseeded = false;

  parameterShapes(): Record<string, number[]> {
    return { weight: [this.inputDim, this.outputDim] };
  }
  stateDict(): Record<string, Tensor> {
    return { weight: this.weight };
  }
  loadStateDict(dict: Record<string, Tensor>, options?: LoadStateDictOptions): void {
    loadParameters(this.className, this.stateDict(), this.parameterShapes(), dict, options);
  }

  /** ids: [batch, steps] (or [batch]: one step) of integers in [0, inputDim) → [batch, steps, outputDim]. */
  forward(ids: Tensor, options?: { training?: boolean }): EmbeddingResult {
    const where = 'Embedding.forward';
    if (!Tensor.isTensor(ids)) throw notTensor(where, '[batch, steps] of ids', ids);
    if ((ids.rank !== 1 && ids.rank !== 2) || ids.shape.some((d) => d < 1)) {
      throw new RangeError(`${where}: input must have shape [batch, steps] (ids) with batch, steps >= 1, got ${formatShape(ids.shape)}`);
    }
    if (options !== undefined) checkOptions(options, `${where}: options`, TRAINING_OPTION);
    const training = flag(options?.training, `${where}: options.training`, false);
    const batch = ids.shape[0], steps = ids.rank === 2 ? ids.shape[1] : 1;
    const src = checkTensor(ids, `${where}: input`, ids.shape, ids.rank === 2 ? ['batch', 'steps'] : ['batch'], ids.dtype).data;
    const n = batch * steps, D = this.outputDim;
    const idx = new Int32Array(n);
    for (let k = 0; k < n; k++) {
      const v = src[k];
      if (!Number.isInteger(v) || v < 0 || v >= this.inputDim) {
        throw new RangeError(`${where}: input[${Math.floor(k / steps)}, ${k % steps}] must be an integer id in [0, inputDim=${this.inputDim}), got ${v}`);
      }
      idx[k] = v;
    }
    const w = this.weight.data;
    const out = this.dtype === 'float64' ? new Float64Array(n * D) : new Float32Array(n * D);
    for (let k = 0; k < n; k++) out.set(w.subarray(idx[k] * D, (idx[k] + 1) * D), k * D);
    const result: EmbeddingResult = { output: Tensor.from(out, [batch, steps, D]) };
    if (this.maskZero) result.mask = Uint8Array.from(idx, (v) => (v === 0 ? 0 : 1));
    if (training) result.run = issue(this, { batch, steps, ids: idx });
    return result;
  }

  /** dLoss/dweight (rows summed over every occurrence of their id); ids have no gradient. */
  backward(run: EmbeddingRun, dOutput: Tensor): { params: Record<string, Tensor> } {
    const where = 'Embedding.backward';
    checkRun(this, run, where);
    const D = this.outputDim;
    const d = checkTensor(dOutput, `${where}: dOutput`, [run.batch, run.steps, D], ['batch', 'steps', 'outputDim'], this.dtype).data;
    const g = new Float64Array(this.inputDim * D);
    for (let k = 0; k < run.ids.length; k++) {
      const o = run.ids[k] * D, s = k * D;
      for (let j = 0; j < D; j++) g[o + j] += d[s + j];
    }
    return { params: { weight: Tensor.from(this.dtype === 'float64' ? g : Float32Array.from(g), [this.inputDim, D]) } };
  }
}

// ---------------------------------------------------------------------------------------------
// Dropout

export interface DropoutOptions {
  /** Fraction of the inputs set to 0 in training, in [0, 1); the rest are scaled by 1/(1 − rate). */
  rate: number;
  /** Seed of the masks (a safe integer); default a random one. */
  seed?: number;
}

export interface DropoutRun {
  /** @internal The mask's scale per element (0 or 1/(1 − rate)); absent when nothing is dropped. */ readonly keep?: Float32Array;
  readonly shape: readonly number[];
}

const DROPOUT_OPTIONS = optionNames<DropoutOptions>({ rate: true, seed: true });
const DROPOUT_FORWARD = optionNames<{ training?: boolean; seed?: number }>({ training: true, seed: true });

/** Inverted dropout per element in training (Keras Dropout); the identity in inference. */
export class Dropout {
  readonly className = 'Dropout';
  readonly rate: number;
  readonly options: Readonly<DropoutOptions>;
  private random: Random;

  constructor(options: DropoutOptions) {
    checkOptions(options, 'options', DROPOUT_OPTIONS, 'Dropout');
    if (typeof options.rate !== 'number' || !(options.rate >= 0 && options.rate < 1)) {
      throw new RangeError(`options.rate: expected a fraction in [0, 1), got ${show(options.rate)}`);
    }
    this.rate = options.rate;
    this.options = Object.freeze({ ...options });
    this.random = new Random(seedOption(options.seed, 'options.seed'));
  }

  /** @internal A model seeds the masks of a layer made without a seed. */
  reseed(seed: number): void {
    if (this.options.seed === undefined) {
      this.random = new Random(seed);
      (this as { options: Readonly<DropoutOptions> }).options = Object.freeze({ ...this.options, seed });
    }
  }

  /** x: any shape. options.seed fixes this call's mask (default: drawn from the layer's generator). */
  forward(x: Tensor, options?: { training?: boolean; seed?: number }): { output: Tensor; run?: DropoutRun } {
    const where = 'Dropout.forward';
    if (!Tensor.isTensor(x)) throw notTensor(where, '[batch, ...]', x);
    checkTensor(x, `${where}: input`, x.shape, [], x.dtype);
    if (options !== undefined) checkOptions(options, `${where}: options`, DROPOUT_FORWARD);
    const training = flag(options?.training, `${where}: options.training`, false);
    if (!training || this.rate === 0) return { output: x, ...(training ? { run: issue(this, { shape: x.shape }) } : {}) };
    const rng = options?.seed !== undefined ? new Random(seedOption(options.seed, `${where}: options.seed`)) : this.random;
    const scale = 1 / (1 - this.rate);
    const keep = new Float32Array(x.size);
    for (let k = 0; k < keep.length; k++) keep[k] = rng.next() < this.rate ? 0 : scale;
    const y = x.data.slice();
    for (let k = 0; k < y.length; k++) y[k] *= keep[k];
    return { output: Tensor.from(y, x.shape), run: issue(this, { keep, shape: x.shape }) };
  }

  backward(run: DropoutRun, dOutput: Tensor): { input: Tensor } {
    const where = 'Dropout.backward';
    checkRun(this, run, where);
    const d = checkTensor(dOutput, `${where}: dOutput`, run.shape, [], Tensor.isTensor(dOutput) ? dOutput.dtype : 'float32');
    if (!run.keep) return { input: d };
    const g = d.data.slice();
    for (let k = 0; k < g.length; k++) g[k] *= run.keep[k];
    return { input: Tensor.from(g, run.shape) };
  }
}

// ---------------------------------------------------------------------------------------------
// RepeatVector

const REPEAT_OPTIONS = optionNames<{ n: number }>({ n: true });

/** [batch, features] → [batch, n, features] (Keras RepeatVector): a vector fed to every step of a decoder. */
export class RepeatVector {
  readonly className = 'RepeatVector';
  readonly n: number;
  readonly options: Readonly<{ n: number }>;
  constructor(options: { n: number }) {
    checkOptions(options, 'options', REPEAT_OPTIONS, 'RepeatVector');
    this.n = dimension(options.n, 'options.n');
    this.options = Object.freeze({ ...options });
  }
  forward(x: Tensor): { output: Tensor } {
    const where = 'RepeatVector.forward';
    if (!Tensor.isTensor(x)) throw notTensor(where, '[batch, features]', x);
    if (x.rank !== 2 || x.shape[0] < 1 || x.shape[1] < 1) throw new RangeError(`${where}: input must have shape [batch, features], got ${formatShape(x.shape)}`);
    const [B, F] = x.shape as [number, number];
    const src = checkTensor(x, `${where}: input`, x.shape, ['batch', 'features'], x.dtype).data;
    const out = x.dtype === 'float64' ? new Float64Array(B * this.n * F) : new Float32Array(B * this.n * F);
    for (let b = 0; b < B; b++) for (let t = 0; t < this.n; t++) out.set(src.subarray(b * F, (b + 1) * F), (b * this.n + t) * F);
    return { output: Tensor.from(out, [B, this.n, F]) };
  }
  /** dOutput [batch, n, features] → dInput [batch, features] (the sum over the n copies). */
  backward(dOutput: Tensor): { input: Tensor } {
    const where = 'RepeatVector.backward';
    if (!Tensor.isTensor(dOutput) || dOutput.rank !== 3 || dOutput.shape[1] !== this.n) {
      throw new RangeError(`${where}: dOutput must have shape [batch, n=${this.n}, features]`);
    }
    const [B, , F] = dOutput.shape as [number, number, number];
    const d = checkTensor(dOutput, `${where}: dOutput`, dOutput.shape, ['batch', 'n', 'features'], dOutput.dtype).data;
    const g = new Float64Array(B * F);
    for (let b = 0; b < B; b++) for (let t = 0; t < this.n; t++) for (let f = 0; f < F; f++) g[b * F + f] += d[(b * this.n + t) * F + f];
    return { input: Tensor.from(dOutput.dtype === 'float64' ? g : Float32Array.from(g), [B, F]) };
  }
}

// ---------------------------------------------------------------------------------------------
// Masking

const MASKING_OPTIONS = optionNames<{ maskValue?: number }>({ maskValue: true });

/**
 * Keras Masking: a step whose features all equal maskValue (default 0) is masked for the layers
 * after it; those steps' features are set to 0 in the output.
 */
export class Masking {
  readonly className = 'Masking';
  readonly maskValue: number;
  readonly options: Readonly<{ maskValue?: number }>;
  constructor(options: { maskValue?: number } = {}) {
    checkOptions(options, 'options', MASKING_OPTIONS, 'Masking');
    this.maskValue = options.maskValue === undefined ? 0 : numberIn(options.maskValue, 'options.maskValue', -3.4e38, 3.4e38);
    this.options = Object.freeze({ ...options });
  }
  /** x: [batch, steps, features] → the output and the mask [batch·steps] (1 = a valid step). */
  forward(x: Tensor): { output: Tensor; mask: Uint8Array } {
    const where = 'Masking.forward';
    if (!Tensor.isTensor(x)) throw notTensor(where, '[batch, steps, features]', x);
    if (x.rank !== 3 || x.shape.some((d) => d < 1)) throw new RangeError(`${where}: input must have shape [batch, steps, features], got ${formatShape(x.shape)}`);
    const [B, T, F] = x.shape as [number, number, number];
    const src = checkTensor(x, `${where}: input`, x.shape, ['batch', 'steps', 'features'], x.dtype).data;
    const mask = new Uint8Array(B * T);
    const out = src.slice();
    for (let r = 0; r < B * T; r++) {
      let any = false;
      for (let f = 0; f < F && !any; f++) any = src[r * F + f] !== this.maskValue;
      mask[r] = any ? 1 : 0;
      if (!any) out.fill(0, r * F, (r + 1) * F);
    }
    return { output: Tensor.from(out, x.shape), mask };
  }
  /** The gradient passes on the valid steps only. */
  backward(dOutput: Tensor, mask: Uint8Array): { input: Tensor } {
    const F = dOutput.shape[dOutput.rank - 1];
    const g = dOutput.data.slice();
    for (let r = 0; r < mask.length; r++) if (!mask[r]) g.fill(0, r * F, (r + 1) * F);
    return { input: Tensor.from(g, dOutput.shape) };
  }
}

// ---------------------------------------------------------------------------------------------
// Activation

const ACTIVATION_OPTIONS = optionNames<{ activation: ElementwiseActivation }>({ activation: true });

/** An activation over the last axis ('softmax' normalises each row): Keras Activation. */
export class Activation {
  readonly className = 'Activation';
  readonly activation: ElementwiseActivation;
  readonly options: Readonly<{ activation: ElementwiseActivation }>;
  constructor(options: { activation: ElementwiseActivation }) {
    checkOptions(options, 'options', ACTIVATION_OPTIONS, 'Activation');
    this.activation = checkActivation(options.activation, 'options.activation');
    this.options = Object.freeze({ ...options });
  }
  forward(x: Tensor, options?: { training?: boolean }): { output: Tensor; run?: { y: TensorData; shape: readonly number[] } } {
    const where = 'Activation.forward';
    if (!Tensor.isTensor(x)) throw notTensor(where, '[batch, ..., features]', x);
    if (x.rank < 1 || x.size < 1) throw new RangeError(`${where}: input must have at least one element, got ${formatShape(x.shape)}`);
    checkTensor(x, `${where}: input`, x.shape, [], x.dtype);
    if (options !== undefined) checkOptions(options, `${where}: options`, TRAINING_OPTION);
    const y = x.data.slice();
    activateInPlace(this.activation, y, x.shape[x.rank - 1]);
    const output = Tensor.from(y, x.shape);
    return flag(options?.training, `${where}: options.training`, false) ? { output, run: issue(this, { y, shape: x.shape }) } : { output };
  }
  backward(run: { y: TensorData; shape: readonly number[] }, dOutput: Tensor): { input: Tensor } {
    const where = 'Activation.backward';
    checkRun(this, run, where);
    const d = checkTensor(dOutput, `${where}: dOutput`, run.shape, [], Tensor.isTensor(dOutput) ? dOutput.dtype : 'float32').data.slice();
    activationGradInPlace(this.activation, d, run.y, run.shape[run.shape.length - 1]);
    return { input: Tensor.from(d, run.shape) };
  }
}

// ---------------------------------------------------------------------------------------------
// TimeDistributed

/**
 * Applies a Dense layer to every step of [batch, steps, features] (Keras TimeDistributed): one GEMM
 * over batch·steps rows, not a loop. Its parameters are the Dense layer's (weight, bias).
 */
export class TimeDistributed {
  readonly className = 'TimeDistributed';
  readonly layer: Dense;
  constructor(layer: Dense) {
    if (!(layer instanceof Dense)) throw new TypeError(`TimeDistributed: layer must be a Dense layer, got ${show(layer)}`);
    this.layer = layer;
  }
  get built(): boolean {
    return this.layer.built;
  }
  build(inputSize: number, seed?: number): void {
    this.layer.build(inputSize, seed);
  }
  parameterShapes(): Record<string, number[]> {
    return this.layer.parameterShapes();
  }
  stateDict(): Record<string, Tensor> {
    return this.layer.stateDict();
  }
  loadStateDict(dict: Record<string, Tensor>, options?: LoadStateDictOptions): void {
    this.layer.loadStateDict(dict, options);
  }
  /** x: [batch, steps, inputSize] → [batch, steps, units]. */
  forward(x: Tensor, options?: { training?: boolean }): { output: Tensor; run?: DenseRun } {
    if (Tensor.isTensor(x) && x.rank !== 3) {
      throw new RangeError(`TimeDistributed.forward: input must have shape [batch, steps, inputSize=${this.layer.inputSize}], got ${formatShape(x.shape)}`);
    }
    return this.layer.forward(x, options);
  }
  backward(run: DenseRun, dOutput: Tensor) {
    return this.layer.backward(run, dOutput);
  }
}
