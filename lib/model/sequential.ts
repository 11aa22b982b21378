// Sequential: a Keras-style model over rnnkit's layers. Input sizes are inferred layer by layer;
// data stays batch-major between layers (the native stacks read and write it in place, so no layer
// transposes); masks and lengths flow from Embedding(maskZero)/Masking or fit's `lengths` into the
// recurrent layers and the loss. fit/evaluate/predict run the recurrent layers on the thread pool
// (forwardAsync/backwardAsync) and yield to the event loop between batches.
import { Tensor, formatShape, type DType } from '../tensor.js';
import { checkOptions, dimension, flag, optionNames, seedOption, show } from '../options.js';
import { Random } from '../init.js';
import { RecurrentBase } from '../layers/base.js';
import { Dense, type DenseRun } from '../layers/dense.js';
import { Activation, Dropout, Embedding, Masking, RepeatVector, TimeDistributed } from '../layers/shaping.js';
import type { TrainingRun } from '../layers/base.js';
import { getLoss, type Loss, type LossName } from '../train/losses.js';
import { getMetric, type Metric, type MetricName } from '../train/metrics.js';
import type { Optimizer } from '../train/optimizers.js';
import { layerConfig, layerFromConfig } from './config.js';
import { loadWeightsInto, saveModel, type SaveOptions } from './persistence.js';
import { Progress } from './progress.js';
import type { Callback, Logs } from './callbacks.js';
import { engineFor, ModelStream, type OpenStreamOptions } from '../serve/stream.js';

/** A layer a Sequential can hold. */
export type ModelLayer = RecurrentBase | Dense | Embedding | Dropout | RepeatVector | Masking | Activation | TimeDistributed;

export interface SequentialOptions {
  /** Seeds the weights and dropout masks of every layer made without a seed (layer i gets seed + i). */
  seed?: number;
  /** Shown by summary() and saved in the config. Default 'sequential'. */
  name?: string;
  /**
   * The shape of one sample, without the batch: [steps, features] (steps may be null: any length),
   * [steps] of ids for an Embedding first layer, or [features]. Default: taken from the first data.
   */
  inputShape?: (number | null)[];
}

export interface CompileOptions {
  optimizer: Optimizer;
  /** A loss name, { name, fromLogits, labelSmoothing }, or a Loss (see losses.ts). */
  loss: LossName | { name: LossName; fromLogits?: boolean; labelSmoothing?: number } | Loss;
  /** Metric names ('accuracy', 'perplexity', 'bitsPerCharacter', …) or Metric objects. Default none. */
  metrics?: (MetricName | Metric)[];
}

export interface FitOptions {
  /** Passes over the data (default 1). */
  epochs?: number;
  /** Sequences per optimizer step (default 32). */
  batchSize?: number;
  /** Shuffle the training samples each epoch (default true; false for stateful layers). */
  shuffle?: boolean;
  /** Seeds shuffling and the dropout masks: the same seed and weights give the same history. */
  seed?: number;
  /** Holds out this fraction of the samples (the last ones, before shuffling) for validation, in [0, 1). */
  validationSplit?: number;
  /** Validation data: [x, y] or [x, y, lengths]. */
  validationData?: [Tensor, Tensor] | [Tensor, Tensor, ArrayLike<number>];
  /** Valid steps per sample ([samples] integers; the rest is padding at the end): recurrent layers and the loss honour it. */
  lengths?: ArrayLike<number>;
  callbacks?: Callback[];
  /** Stops cleanly after the current batch; the history so far is returned with aborted: true. */
  signal?: AbortSignal;
  /** 0 silent, 1 a progress bar on a TTY (one line per epoch otherwise), 2 one line per epoch. Default 1. */
  verbose?: 0 | 1 | 2;
  /** Truncated BPTT: split each batch's sequences into windows of k steps, one optimizer step per window, states carried between windows (detached). */
  truncatedBptt?: number;
  /** Index of the first epoch (to continue a run; default 0). */
  initialEpoch?: number;
}

export interface PredictOptions {
  batchSize?: number;
  lengths?: ArrayLike<number>;
}

export interface EvaluateOptions extends PredictOptions {
  verbose?: 0 | 1;
}

/** What fit returns: per epoch, the loss, the metrics and their validation values (Keras's History). */
export interface History {
  epoch: number[];
  history: Record<string, number[]>;
  /** True when fit stopped for options.signal. */
  aborted: boolean;
}

const SEQUENTIAL_OPTIONS = optionNames<SequentialOptions>({ seed: true, name: true, inputShape: true });
const COMPILE_OPTIONS = optionNames<CompileOptions>({ optimizer: true, loss: true, metrics: true });
const FIT_OPTIONS = optionNames<FitOptions>({
  epochs: true, batchSize: true, shuffle: true, seed: true, validationSplit: true, validationData: true, lengths: true, callbacks: true,
  signal: true, verbose: true, truncatedBptt: true, initialEpoch: true,
});
const PREDICT_OPTIONS = optionNames<PredictOptions>({ batchSize: true, lengths: true });
const OPEN_STREAM_OPTIONS = optionNames<OpenStreamOptions>({ batchInvariant: true, from: true });
const EVALUATE_OPTIONS = optionNames<EvaluateOptions>({ batchSize: true, lengths: true, verbose: true });

/** What flows between layers: the batch-major tensor and its time mask: lengths, a 0/1 Keras mask, or both (a mask of that form). */
interface Flow {
  x: Tensor;
  lengths?: Int32Array;
  mask?: Uint8Array;
}

/** What one layer's training forward keeps for backward. */
type Cache =
  | { kind: 'recurrent'; run: TrainingRun }
  | { kind: 'dense'; run: DenseRun }
  | { kind: 'embedding'; run: NonNullable<ReturnType<Embedding['forward']>['run']> }
  | { kind: 'dropout'; run: NonNullable<ReturnType<Dropout['forward']>['run']> }
  | { kind: 'activation'; run: NonNullable<ReturnType<Activation['forward']>['run']> }
  | { kind: 'masking'; mask: Uint8Array }
  | { kind: 'repeat' }
  | { kind: 'skip' };

function isModelLayer(l: unknown): l is ModelLayer {
  return l instanceof RecurrentBase || l instanceof Dense || l instanceof Embedding || l instanceof Dropout ||
    l instanceof RepeatVector || l instanceof Masking || l instanceof Activation || l instanceof TimeDistributed;
}

/** A mask that is 1…1 0…0 in every row → those lengths (the native stacks then skip the padding). */
function maskToLengths(mask: Uint8Array, batch: number, steps: number): Int32Array | undefined {
  const lengths = new Int32Array(batch);
  for (let b = 0; b < batch; b++) {
    let n = 0;
    while (n < steps && mask[b * steps + n]) n++;
    for (let t = n; t < steps; t++) if (mask[b * steps + t]) return undefined;
    if (n === 0) return undefined;
    lengths[b] = n;
  }
  return lengths;
}

function checkLengths(v: unknown, what: string, samples: number, steps: number): Int32Array {
  if (v === null || typeof v !== 'object' || typeof (v as ArrayLike<unknown>).length !== 'number') {
    throw new TypeError(`${what}: expected an array-like of ${samples} integers, got ${show(v)}`);
  }
  const list = v as ArrayLike<unknown>;
  if (list.length !== samples) throw new RangeError(`${what}: expected ${samples} entries (one per sample), got ${list.length}`);
  const out = new Int32Array(samples);
  for (let i = 0; i < samples; i++) {
    const n = list[i];
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > steps) throw new RangeError(`${what}[${i}]: expected an integer in [1, steps=${steps}], got ${show(n)}`);
    out[i] = n;
  }
  return out;
}

/** Rows `idx` of a batch-first tensor. */
function gather(t: Tensor, idx: ArrayLike<number>): Tensor {
  const row = t.size / t.shape[0];
  const out = t.dtype === 'float64' ? new Float64Array(idx.length * row) : new Float32Array(idx.length * row);
  for (let i = 0; i < idx.length; i++) out.set(t.data.subarray(idx[i] * row, (idx[i] + 1) * row), i * row);
  return Tensor.from(out, [idx.length, ...t.shape.slice(1)]);
}

/** Steps [t0, t1) of [batch, steps, ...] (or of [batch, steps] ids/targets). */
function window(t: Tensor, t0: number, t1: number): Tensor {
  const [B, T] = t.shape as [number, number];
  const inner = t.size / (B * T);
  const out = t.dtype === 'float64' ? new Float64Array(B * (t1 - t0) * inner) : new Float32Array(B * (t1 - t0) * inner);
  for (let b = 0; b < B; b++) out.set(t.data.subarray((b * T + t0) * inner, (b * T + t1) * inner), b * (t1 - t0) * inner);
  return Tensor.from(out, [B, t1 - t0, ...t.shape.slice(2)]);
}

function concatRows(parts: Tensor[]): Tensor {
  const rows = parts.reduce((a, p) => a + p.shape[0], 0);
  const size = parts.reduce((a, p) => a + p.size, 0);
  const out = parts[0].dtype === 'float64' ? new Float64Array(size) : new Float32Array(size);
  let o = 0;
  for (const p of parts) {
    out.set(p.data, o);
    o += p.size;
  }
  return Tensor.from(out, [rows, ...parts[0].shape.slice(1)]);
}

/** A layer's live parameters (none for the parameter-free layers). */
function layerParameters(layer: ModelLayer): Record<string, Tensor> {
  const l = layer as { stateDict?: () => Record<string, Tensor> };
  return typeof l.stateDict === 'function' ? l.stateDict() : {};
}

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** The weighted mean loss and the metrics over the batches of an epoch or an evaluation. */
class Tally {
  private lossSum = 0;
  private weightSum = 0;
  constructor(private readonly metrics: Metric[]) {
    for (const m of metrics) m.reset();
  }
  add(r: { rows: { pred: Tensor; target: Int32Array | Tensor; weights?: Float64Array }; value: number }): void {
    const { pred, target, weights } = r.rows;
    const w = weights ? weights.reduce((a, v) => a + v, 0) : pred.shape[0];
    this.lossSum += r.value * w;
    this.weightSum += w;
    for (const m of this.metrics) m.update(pred, target, weights);
  }
  logs(): Logs {
    const logs: Logs = { loss: this.lossSum / Math.max(this.weightSum, 1e-300) };
    for (const m of this.metrics) logs[m.name] = m.result();
    return logs;
  }
}

export class Sequential {
  readonly className = 'Sequential';
  readonly name: string;
  readonly seed: number | undefined;
  readonly layers: ModelLayer[] = [];
  /** Set by a callback (EarlyStopping) to end fit after the current epoch. */
  stopTraining = false;
  private inputShapeSpec: (number | null)[] | undefined;
  private compiled: { optimizer: Optimizer; loss: Loss; metrics: (MetricName | Metric)[]; fused: boolean } | undefined;
  /** Output shape (without batch) of every layer once built. */
  private shapes: (number | null)[][] = [];

  constructor(layers: ModelLayer[] = [], options: SequentialOptions = {}) {
    checkOptions(options, 'Sequential: options', SEQUENTIAL_OPTIONS);
    this.seed = seedOption(options.seed, 'Sequential: options.seed');
    this.name = options.name ?? 'sequential';
    if (typeof this.name !== 'string') throw new TypeError(`Sequential: options.name: expected a string, got ${show(options.name)}`);
    if (options.inputShape !== undefined) this.inputShapeSpec = this.checkInputShape(options.inputShape, 'Sequential: options.inputShape');
    if (!Array.isArray(layers)) throw new TypeError(`Sequential: layers must be an array of layers, got ${show(layers)}`);
    for (const l of layers) this.add(l);
  }

  /** Appends a layer (before the model is built). */
  add(layer: ModelLayer): void {
    if (!isModelLayer(layer)) {
      throw new TypeError(`Sequential.add: expected a layer (SimpleRNN, LSTM, GRU, Bidirectional, DropoutWrapper, Dense, Embedding, Dropout, RepeatVector, Masking, Activation, TimeDistributed), got ${show(layer)}`);
    }
    if (this.layers.includes(layer)) throw new TypeError('Sequential.add: this layer object is already in the model');
    if (this.built) throw new TypeError('Sequential.add: the model is already built; add layers before the first fit/predict/build');
    if (layer instanceof RecurrentBase && layer.returnState) {
      throw new TypeError(`Sequential.add: a ${layer.className} with returnState has several outputs; use the layer API (forward/backward) for state passing`);
    }
    if (layer instanceof Embedding && this.layers.length > 0) throw new TypeError('Sequential.add: an Embedding must be the first layer');
    this.layers.push(layer);
  }

  private checkInputShape(shape: unknown, what: string): (number | null)[] {
    if (!Array.isArray(shape) || shape.length < 1 || shape.length > 2 || shape.some((d, i) => !(d === null && i === 0) && !(Number.isSafeInteger(d) && d >= 1))) {
      throw new TypeError(`${what}: expected [steps, features], [steps] (ids) or [features] of positive integers (steps may be null), got ${show(shape)}`);
    }
    return [...shape];
  }

  get built(): boolean {
    return this.shapes.length === this.layers.length && this.layers.length > 0;
  }

  /** Builds every layer for samples of `inputShape` (see SequentialOptions.inputShape). */
  build(inputShape?: (number | null)[]): void {
    if (this.built) return;
    const spec = inputShape !== undefined ? this.checkInputShape(inputShape, 'Sequential.build: inputShape') : this.inputShapeSpec;
    if (!spec) throw new TypeError('Sequential.build: the input shape is unknown: give options.inputShape or call fit/predict with data');
    if (this.layers.length === 0) throw new TypeError('Sequential.build: the model has no layers');
    let shape = spec;
    const shapes: (number | null)[][] = [];
    this.layers.forEach((layer, i) => {
      const seed = this.seed === undefined ? undefined : (this.seed + i) % Number.MAX_SAFE_INTEGER;
      shape = this.buildLayer(layer, shape, seed, i);
      shapes.push(shape);
    });
    this.inputShapeSpec = spec;
    this.shapes = shapes;
  }

  private buildLayer(layer: ModelLayer, shape: (number | null)[], seed: number | undefined, i: number): (number | null)[] {
    const where = `Sequential: layer ${i} (${layer.className})`;
    const last = shape[shape.length - 1] as number;
    const need = (rank: number, what: string) => {
      if (shape.length !== rank) throw new TypeError(`${where}: expects ${what} per sample, gets ${formatShape(shape.map((d) => d ?? 'steps'))}`);
    };
    if (layer instanceof Embedding) {
      need(1, '[steps] of ids');
      if (seed !== undefined) layer.reseed(seed);
      return [shape[0], layer.outputDim];
    }
    if (layer instanceof RecurrentBase) {
      need(2, '[steps, features]');
      layer.build(last, seed);
      return layer.returnSequences ? [shape[0], layer.outputWidth] : [layer.outputWidth];
    }
    if (layer instanceof TimeDistributed) {
      need(2, '[steps, features]');
      layer.build(last, seed);
      return [shape[0], layer.layer.units];
    }
    if (layer instanceof Dense) {
      layer.build(last, seed);
      return [...shape.slice(0, -1), layer.units];
    }
    if (layer instanceof RepeatVector) {
      need(1, '[features]');
      return [layer.n, last];
    }
    if (layer instanceof Masking) {
      need(2, '[steps, features]');
      return shape;
    }
    if (layer instanceof Dropout && seed !== undefined) layer.reseed(seed);
    return shape;
  }

  /** The model's parameters, live, with PyTorch nn.Sequential's names: '0.weight', '1.weight_ih_l0', … */
  namedParameters(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    this.layers.forEach((layer, i) => {
      for (const [k, t] of Object.entries(layerParameters(layer))) out[`${i}.${k}`] = t;
    });
    return out;
  }

  /** Parameter shapes with the names of namedParameters(). */
  parameterShapes(): Record<string, number[]> {
    return Object.fromEntries(Object.entries(this.namedParameters()).map(([k, t]) => [k, [...t.shape]]));
  }

  /** The scalar type of the model's parameters (its first parametrised layer's). */
  get dtype(): DType {
    for (const l of this.layers) if ('dtype' in l) return l.dtype;
    if (this.layers.some((l) => l instanceof TimeDistributed)) return (this.layers.find((l) => l instanceof TimeDistributed) as TimeDistributed).layer.dtype;
    return 'float32';
  }

  /** Declares that parameters were changed in place (re-prepares the recurrent layers' native weights). */
  markWeightsChanged(): void {
    for (const l of this.layers) {
      const m = l as { markWeightsChanged?: () => void };
      if (typeof m.markWeightsChanged === 'function') m.markWeightsChanged();
    }
  }

  /** Forgets the states of stateful layers (and of step-wise prediction). */
  resetStates(): void {
    for (const l of this.layers) if (l instanceof RecurrentBase) l.resetStates();
  }

  // ------------------------------------------------------------------------------------------
  // compile

  compile(options: CompileOptions): void {
    checkOptions(options, 'Sequential.compile: options', COMPILE_OPTIONS);
    const opt = options.optimizer;
    if (typeof opt !== 'object' || opt === null || typeof (opt as Optimizer).step !== 'function') {
      throw new TypeError(`Sequential.compile: options.optimizer must be an optimizer (SGD, Adam, AdamW, RMSprop, Adagrad), got ${show(opt)}`);
    }
    if (options.loss === undefined) throw new TypeError('Sequential.compile: options.loss is required (e.g. \'sparseCategoricalCrossentropy\')');
    const loss = getLoss(options.loss);
    const metrics = options.metrics ?? [];
    if (!Array.isArray(metrics)) throw new TypeError(`Sequential.compile: options.metrics must be an array, got ${show(metrics)}`);
    const softmaxLast = this.softmaxLast();
    const categorical = loss.name === 'sparseCategoricalCrossentropy' || loss.name === 'categoricalCrossentropy';
    if (softmaxLast && categorical && loss.fromLogits) {
      process.emitWarning(
        `the model's last layer applies softmax but the loss ${loss.name} has fromLogits: true, so softmax would be applied twice; ` +
          'remove the softmax (predictions are then logits) or use fromLogits: false (rnnkit then fuses the softmax into the loss)',
        { code: 'RNNKIT_DOUBLE_SOFTMAX' },
      );
    }
    // A softmax last layer with a probability loss: train on its logits with a fused, stable softmax cross-entropy.
    const fused = softmaxLast && categorical && !loss.fromLogits;
    this.compiled = { optimizer: opt, loss: fused ? getLoss({ ...loss.getConfig(), fromLogits: true }) : loss, metrics, fused };
    for (const m of metrics) getMetric(m, this.compiled.loss);  // checks the names now
  }

  private softmaxLast(): boolean {
    const last = this.layers[this.layers.length - 1];
    const dense = last instanceof TimeDistributed ? last.layer : last;
    return (dense instanceof Dense && dense.activation === 'softmax') || (last instanceof Activation && last.activation === 'softmax');
  }

  get optimizer(): Optimizer | undefined {
    return this.compiled?.optimizer;
  }
  get loss(): Loss | undefined {
    return this.compiled?.loss;
  }

  // ------------------------------------------------------------------------------------------
  // forward and backward

  /** Checks x against the model's input and builds the model from it when needed. */
  private checkInput(x: unknown, where: string): Tensor {
    if (!Tensor.isTensor(x)) throw new TypeError(`${where}: x must be a Tensor of shape [samples, ...sample shape], got ${show(x)}`);
    if (x.rank < 2 || x.shape.some((d) => d < 1)) throw new RangeError(`${where}: x must have shape [samples, steps, features], [samples, steps] (ids) or [samples, features], got ${formatShape(x.shape)}`);
    if (!this.built) {
      // Sequences may have any length: the steps of the first data are not fixed.
      const sample: (number | null)[] = x.shape.slice(1);
      if (sample.length === 2 || (sample.length === 1 && this.layers[0] instanceof Embedding)) sample[0] = null;
      const spec = this.inputShapeSpec ?? sample;
      this.build(spec);
    }
    const spec = this.inputShapeSpec!;
    const sample = x.shape.slice(1);
    const ok = sample.length === spec.length && sample.every((d, i) => spec[i] === null || spec[i] === d);
    if (!ok) throw new RangeError(`${where}: x must have shape [samples, ${spec.map((d) => d ?? 'steps').join(', ')}], got ${formatShape(x.shape)}`);
    return x;
  }

  /**
   * Runs the layers. With training, keeps what backward needs; `fusedLogits` stops before the final
   * softmax (the loss applies it). seeds: the dropout seed of each layer's call (training).
   */
  private async forwardAll(flow: Flow, training: boolean, fusedLogits: boolean, rng: Random | undefined): Promise<{ flow: Flow; caches: Cache[] }> {
    const caches: Cache[] = [];
    const n = this.layers.length;
    for (let i = 0; i < n; i++) {
      const layer = this.layers[i];
      const lastFused = fusedLogits && i === n - 1;
      const seed = rng ? Math.floor(rng.next() * 2 ** 32) : undefined;
      const { x } = flow;
      if (layer instanceof RecurrentBase) {
        const opts: Parameters<RecurrentBase['forward']>[1] = { training };
        // A Keras mask (maskZero, Masking) repeats the last valid output over the masked steps of a
        // returned sequence, so a sequence output takes the mask; the last output takes the lengths
        // the mask came to when it has that form (the padding is then never computed).
        if (flow.mask && (layer.returnSequences || !flow.lengths)) opts.mask = flow.mask;
        else if (flow.lengths) opts.lengths = flow.lengths;
        if (training && seed !== undefined) opts.dropoutSeed = seed;
        const r = await layer.forwardAsync(x, opts);
        if (training) caches.push({ kind: 'recurrent', run: r.run! });
        flow = layer.returnSequences ? { ...flow, x: r.output } : { x: r.output };
      } else if (layer instanceof Dense || layer instanceof TimeDistributed) {
        const dense = layer instanceof Dense ? layer : layer.layer;
        if (layer instanceof TimeDistributed && x.rank !== 3) layer.forward(x);  // its error
        const r = lastFused ? dense.forwardLogits(x, { training }) : dense.forward(x, { training });
        if (training) caches.push({ kind: 'dense', run: r.run! });
        flow = { ...flow, x: r.output };
      } else if (layer instanceof Embedding) {
        const r = layer.forward(x, { training });
        if (training) caches.push({ kind: 'embedding', run: r.run! });
        const steps = r.output.shape[1];
        flow = { x: r.output, ...(flow.lengths ? { lengths: flow.lengths } : {}) };
        if (r.mask) {
          // maskZero's mask, cut at the given lengths too.
          const given = flow.lengths;
          if (given) for (let b = 0; b < x.shape[0]; b++) r.mask.fill(0, b * steps + given[b], (b + 1) * steps);
          delete flow.lengths;
          const lengths = maskToLengths(r.mask, x.shape[0], steps);
          if (lengths) flow.lengths = lengths;
          flow.mask = r.mask;
        }
      } else if (layer instanceof Dropout) {
        const r = layer.forward(x, training ? { training, ...(seed !== undefined ? { seed } : {}) } : undefined);
        if (training) caches.push({ kind: 'dropout', run: r.run! });
        flow = { ...flow, x: r.output };
      } else if (layer instanceof Activation) {
        if (lastFused) {
          if (training) caches.push({ kind: 'skip' });
          continue;
        }
        const r = layer.forward(x, { training });
        if (training) caches.push({ kind: 'activation', run: r.run! });
        flow = { ...flow, x: r.output };
      } else if (layer instanceof Masking) {
        const r = layer.forward(x);
        if (training) caches.push({ kind: 'masking', mask: r.mask });
        const lengths = maskToLengths(r.mask, x.shape[0], x.shape[1]);
        flow = lengths ? { x: r.output, lengths, mask: r.mask } : { x: r.output, mask: r.mask };
      } else if (layer instanceof RepeatVector) {
        if (training) caches.push({ kind: 'repeat' });
        flow = { x: layer.forward(x).output };
      }
    }
    return { flow, caches };
  }

  /** Backpropagates dOutput through every layer; returns the gradients with namedParameters()' names. */
  private async backwardAll(caches: Cache[], dOutput: Tensor): Promise<Record<string, Tensor>> {
    const grads: Record<string, Tensor> = {};
    let d: Tensor | undefined = dOutput;
    for (let i = this.layers.length - 1; i >= 0 && d; i--) {
      const layer = this.layers[i], c = caches[i];
      const put = (params: Record<string, Tensor>) => {
        for (const [k, t] of Object.entries(params)) grads[`${i}.${k}`] = t;
      };
      const needInput = i > 0;
      switch (c.kind) {
        case 'recurrent': {
          const g = await (layer as RecurrentBase).backwardAsync(c.run, d);
          c.run.release();
          put(g.params);
          d = needInput ? g.input : undefined;
          break;
        }
        case 'dense': {
          const dense = layer instanceof TimeDistributed ? layer.layer : (layer as Dense);
          const g = dense.backward(c.run, d);
          put(g.params);
          d = g.input;
          break;
        }
        case 'embedding':
          put((layer as Embedding).backward(c.run, d).params);
          d = undefined;
          break;
        case 'dropout':
          d = (layer as Dropout).backward(c.run, d).input;
          break;
        case 'activation':
          d = (layer as Activation).backward(c.run, d).input;
          break;
        case 'masking':
          d = (layer as Masking).backward(d, c.mask).input;
          break;
        case 'repeat':
          d = (layer as RepeatVector).backward(d).input;
          break;
        case 'skip':
          break;
      }
    }
    // Layers the gradient did not reach (e.g. before an Embedding) get zeros.
    for (const [k, t] of Object.entries(this.namedParameters())) grads[k] ??= Tensor.zeros(t.shape, t.dtype);
    return grads;
  }

  /** The loss's rows: prediction [rows, C], targets and per-row weights (0 on padding). */
  private lossRows(pred: Tensor, y: Tensor, flow: Flow, loss: Loss, where: string): { pred: Tensor; target: Int32Array | Tensor; weights?: Float64Array } {
    const C = pred.shape[pred.rank - 1];
    const rows = pred.size / C;
    const flat = Tensor.from(pred.data, [rows, C]);
    let target: Int32Array | Tensor;
    const lead = pred.shape.slice(0, -1);
    if (loss.targetKind === 'sparse') {
      const ok = y.size === rows && (y.rank === lead.length || (y.rank === lead.length + 1 && y.shape[y.rank - 1] === 1)) && lead.every((d, i) => y.shape[i] === d);
      if (!ok) throw new RangeError(`${where}: y must have shape ${formatShape(lead)} (class ids) for ${loss.name} with a model output ${formatShape(pred.shape)}, got ${formatShape(y.shape)}`);
      target = new Int32Array(rows);
      for (let r = 0; r < rows; r++) {
        const v = y.data[r];
        if (!Number.isInteger(v) || v < 0 || v >= C) throw new RangeError(`${where}: y entry ${r} must be a class id in [0, ${C}), got ${v}`);
        target[r] = v;
      }
    } else {
      if (y.size !== pred.size || y.rank !== pred.rank || y.shape.some((d, i) => d !== pred.shape[i])) {
        throw new RangeError(`${where}: y must have the model output's shape ${formatShape(pred.shape)} for ${loss.name}, got ${formatShape(y.shape)}`);
      }
      target = Tensor.from(y.dtype === pred.dtype ? y.data : (pred.dtype === 'float64' ? Float64Array.from(y.data) : Float32Array.from(y.data)), [rows, C]);
    }
    let weights: Float64Array | undefined;
    if (pred.rank === 3 && (flow.lengths || flow.mask)) {
      const [B, T] = pred.shape as [number, number];
      weights = new Float64Array(B * T);
      if (flow.lengths) for (let b = 0; b < B; b++) weights.fill(1, b * T, b * T + flow.lengths[b]);
      else for (let k = 0; k < B * T; k++) weights[k] = flow.mask![k];
    }
    return { pred: flat, target, ...(weights ? { weights } : {}) };
  }

  /** One batch through every layer and the loss: its rows, value and gradient (and the caches when training). */
  private async batchLoss(x: Tensor, y: Tensor, lengths: Int32Array | undefined, training: boolean, rng: Random | undefined, where: string) {
    const { loss, fused } = this.compiled!;
    const { flow, caches } = await this.forwardAll(this.firstFlow(x, lengths), training, fused, rng);
    const rows = this.lossRows(flow.x, y, flow, loss, where);
    const { loss: value, grad } = loss.compute(rows.pred, rows.target, rows.weights);
    return { rows, value, caches, dOutput: Tensor.from(grad.data, flow.x.shape) };
  }

  /** Checks that the model is compiled and that x and y pair up. */
  private checkData(x: unknown, y: unknown, where: string): NonNullable<Sequential['compiled']> {
    const compiled = this.compiled;
    if (!compiled) throw new TypeError(`${where}: call compile({ optimizer, loss }) first`);
    this.checkInput(x, where);
    const n = (x as Tensor).shape[0];
    if (!Tensor.isTensor(y) || y.shape[0] !== n) {
      throw new RangeError(`${where}: y must be a Tensor with one entry per sample (samples=${n}), got ${Tensor.isTensor(y) ? formatShape(y.shape) : show(y)}`);
    }
    return compiled;
  }

  private firstFlow(x: Tensor, lengths: Int32Array | undefined): Flow {
    return lengths ? { x, lengths } : { x };
  }

  // ------------------------------------------------------------------------------------------
  // fit, evaluate, predict

  async fit(x: Tensor, y: Tensor, options: FitOptions = {}): Promise<History> {
    const where = 'Sequential.fit';
    checkOptions(options, `${where}: options`, FIT_OPTIONS);
    const compiled = this.checkData(x, y, where);
    const epochs = options.epochs === undefined ? 1 : dimension(options.epochs, `${where}: options.epochs`);
    const initialEpoch = options.initialEpoch === undefined ? 0 : options.initialEpoch;
    if (!Number.isSafeInteger(initialEpoch) || initialEpoch < 0 || initialEpoch >= epochs) throw new RangeError(`${where}: options.initialEpoch: expected an integer in [0, epochs=${epochs}), got ${show(options.initialEpoch)}`);
    const batchSize = options.batchSize === undefined ? 32 : dimension(options.batchSize, `${where}: options.batchSize`);
    const stateful = this.layers.some((l) => l instanceof RecurrentBase && l.stateful);
    const shuffle = flag(options.shuffle, `${where}: options.shuffle`, !stateful);
    const verbose = options.verbose ?? 1;
    if (verbose !== 0 && verbose !== 1 && verbose !== 2) throw new TypeError(`${where}: options.verbose: expected 0, 1 or 2, got ${show(verbose)}`);
    const rng = new Random(seedOption(options.seed, `${where}: options.seed`));
    const samples = x.shape[0];
    const steps = x.rank >= 3 || this.layers[0] instanceof Embedding ? x.shape[1] : 1;
    let lengths = options.lengths === undefined ? undefined : checkLengths(options.lengths, `${where}: options.lengths`, samples, steps);
    const signal = options.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError(`${where}: options.signal must be an AbortSignal, got ${show(signal)}`);
    const tbptt = options.truncatedBptt === undefined ? 0 : dimension(options.truncatedBptt, `${where}: options.truncatedBptt`);
    if (tbptt > 0) {
      if (lengths) throw new TypeError(`${where}: options.truncatedBptt cannot be combined with options.lengths (a window could hold only padding)`);
      if (this.shapes[this.shapes.length - 1].length !== 2) throw new TypeError(`${where}: options.truncatedBptt needs a per-step output (returnSequences on the last recurrent layer)`);
    }
    const callbacks = options.callbacks ?? [];
    if (!Array.isArray(callbacks)) throw new TypeError(`${where}: options.callbacks must be an array, got ${show(callbacks)}`);

    // Validation data: held out from the end (Keras), or given.
    let train = { x, y, lengths };
    let validation: { x: Tensor; y: Tensor; lengths?: Int32Array } | undefined;
    if (options.validationSplit !== undefined && options.validationData !== undefined) throw new TypeError(`${where}: give options.validationSplit or options.validationData, not both`);
    if (options.validationSplit !== undefined) {
      const f = options.validationSplit;
      if (typeof f !== 'number' || !(f >= 0 && f < 1)) throw new RangeError(`${where}: options.validationSplit: expected a fraction in [0, 1), got ${show(f)}`);
      const nVal = Math.floor(samples * f);
      if (nVal > 0) {
        if (nVal === samples) throw new RangeError(`${where}: options.validationSplit leaves no training samples`);
        const trainIdx = Array.from({ length: samples - nVal }, (_, i) => i), valIdx = Array.from({ length: nVal }, (_, i) => samples - nVal + i);
        train = { x: gather(x, trainIdx), y: gather(y, trainIdx), lengths: lengths?.slice(0, samples - nVal) };
        validation = { x: gather(x, valIdx), y: gather(y, valIdx), ...(lengths ? { lengths: lengths.slice(samples - nVal) } : {}) };
      }
    } else if (options.validationData !== undefined) {
      const v = options.validationData;
      if (!Array.isArray(v) || v.length < 2 || v.length > 3) throw new TypeError(`${where}: options.validationData must be [x, y] or [x, y, lengths]`);
      this.checkInput(v[0], `${where}: options.validationData[0]`);
      validation = { x: v[0], y: v[1] };
      if (v[2] !== undefined) validation.lengths = checkLengths(v[2], `${where}: options.validationData[2]`, v[0].shape[0], v[0].shape[1]);
    }
    lengths = train.lengths;
    const n = train.x.shape[0];
    const batches = Math.ceil(n / batchSize);
    const { optimizer, loss } = compiled;
    const metrics = compiled.metrics.map((m) => getMetric(m, loss));
    const history: History = { epoch: [], history: {}, aborted: false };
    const progress = new Progress(verbose, epochs, batches);
    this.stopTraining = false;
    for (const cb of callbacks) cb.setModel?.(this);
    for (const cb of callbacks) await cb.onTrainBegin?.({});

    for (let epoch = initialEpoch; epoch < epochs && !this.stopTraining && !history.aborted; epoch++) {
      const order = Int32Array.from({ length: n }, (_, i) => i);
      if (shuffle) {
        for (let i = n - 1; i > 0; i--) {
          const j = Math.floor(rng.next() * (i + 1));
          [order[i], order[j]] = [order[j], order[i]];
        }
      }
      if (stateful) this.resetStates();
      for (const cb of callbacks) await cb.onEpochBegin?.(epoch, {});
      progress.startEpoch(epoch);
      const tally = new Tally(metrics);
      let seen = 0;
      for (let b = 0; b < batches; b++) {
        const idx = order.subarray(b * batchSize, Math.min(n, (b + 1) * batchSize));
        const xb = gather(train.x, idx), yb = gather(train.y, idx);
        const lb = lengths ? Int32Array.from(idx, (i) => lengths![i]) : undefined;
        const windows: [number, number][] = [];
        if (tbptt > 0) {
          for (let t0 = 0; t0 < xb.shape[1]; t0 += tbptt) windows.push([t0, Math.min(xb.shape[1], t0 + tbptt)]);
          for (const l of this.layers) if (l instanceof RecurrentBase) {
            l.resetStates();
            l.carryStates = true;
          }
        } else {
          windows.push([0, -1]);
        }
        try {
          for (const [t0, t1] of windows) {
            const xw = t1 < 0 ? xb : window(xb, t0, t1), yw = t1 < 0 ? yb : window(yb, t0, t1);
            const r = await this.batchLoss(xw, yw, lb, true, rng, where);
            tally.add(r);
            optimizer.step(this.namedParameters(), await this.backwardAll(r.caches, r.dOutput));
          }
        } finally {
          if (tbptt > 0) for (const l of this.layers) if (l instanceof RecurrentBase) {
            l.carryStates = false;
            l.resetStates();
          }
        }
        seen += idx.length;
        const logs = tally.logs();
        progress.batch(b + 1, seen, logs);
        for (const cb of callbacks) await cb.onBatchEnd?.(b, logs);
        if (signal?.aborted) {
          history.aborted = true;
          break;
        }
        await yieldToLoop();
      }
      const logs = tally.logs();
      if (validation && !history.aborted) {
        const v = await this.evaluate(validation.x, validation.y, { batchSize, ...(validation.lengths ? { lengths: validation.lengths } : {}), verbose: 0 });
        for (const [k, val] of Object.entries(v)) logs[`val_${k}`] = val;
      }
      history.epoch.push(epoch);
      for (const [k, val] of Object.entries(logs)) (history.history[k] ??= []).push(val);
      progress.endEpoch(epoch, logs, history.aborted);
      for (const cb of callbacks) await cb.onEpochEnd?.(epoch, logs);
    }
    progress.stop();
    for (const cb of callbacks) await cb.onTrainEnd?.({});
    return history;
  }

  /**
   * The loss of one batch and its gradient for every parameter (names of namedParameters()), in
   * training mode (dropout on) without changing anything: for custom loops and gradient checks.
   * The same options.seed gives the same dropout masks.
   */
  async computeGradients(x: Tensor, y: Tensor, options: { lengths?: ArrayLike<number>; seed?: number } = {}): Promise<{ loss: number; grads: Record<string, Tensor> }> {
    const where = 'Sequential.computeGradients';
    checkOptions(options, `${where}: options`, optionNames<{ lengths?: ArrayLike<number>; seed?: number }>({ lengths: true, seed: true }));
    this.checkData(x, y, where);
    const lengths = options.lengths === undefined ? undefined : checkLengths(options.lengths, `${where}: options.lengths`, x.shape[0], x.shape[1]);
    const rng = new Random(seedOption(options.seed, `${where}: options.seed`));
    const r = await this.batchLoss(x, y, lengths, true, rng, where);
    return { loss: r.value, grads: await this.backwardAll(r.caches, r.dOutput) };
  }

  /** The loss and metrics over (x, y), in batches (dropout off). */
  async evaluate(x: Tensor, y: Tensor, options: EvaluateOptions = {}): Promise<Logs> {
    const where = 'Sequential.evaluate';
    checkOptions(options, `${where}: options`, EVALUATE_OPTIONS);
    const compiled = this.checkData(x, y, where);
    const batchSize = options.batchSize === undefined ? 32 : dimension(options.batchSize, `${where}: options.batchSize`);
    const n = x.shape[0];
    const lengths = options.lengths === undefined ? undefined : checkLengths(options.lengths, `${where}: options.lengths`, n, x.shape[1]);
    const tally = new Tally(compiled.metrics.map((m) => getMetric(m, compiled.loss)));
    for (let s = 0; s < n; s += batchSize) {
      const idx = Array.from({ length: Math.min(batchSize, n - s) }, (_, i) => s + i);
      const xb = gather(x, idx), yb = gather(y, idx);
      const lb = lengths ? lengths.slice(s, s + idx.length) : undefined;
      tally.add(await this.batchLoss(xb, yb, lb, false, undefined, where));
      await yieldToLoop();
    }
    return tally.logs();
  }

  /** The model's output for every sample, computed in batches on the thread pool. */
  async predict(x: Tensor, options: PredictOptions = {}): Promise<Tensor> {
    const where = 'Sequential.predict';
    checkOptions(options, `${where}: options`, PREDICT_OPTIONS);
    this.checkInput(x, where);
    const batchSize = options.batchSize === undefined ? 32 : dimension(options.batchSize, `${where}: options.batchSize`);
    const n = x.shape[0];
    const lengths = options.lengths === undefined ? undefined : checkLengths(options.lengths, `${where}: options.lengths`, n, x.shape[1]);
    const parts: Tensor[] = [];
    for (let s = 0; s < n; s += batchSize) {
      const idx = Array.from({ length: Math.min(batchSize, n - s) }, (_, i) => s + i);
      const { flow } = await this.forwardAll(this.firstFlow(n <= batchSize ? x : gather(x, idx), lengths?.slice(s, s + idx.length)), false, false, undefined);
      parts.push(flow.x);
    }
    return parts.length === 1 ? parts[0] : concatRows(parts);
  }

  /**
   * One step of every sequence with the states carried from the previous call (streaming
   * inference, sampling): x [batch, 1, features] or [batch, 1] ids → the output of that step.
   * resetStates() starts over.
   */
  async predictStep(x: Tensor): Promise<Tensor> {
    const where = 'Sequential.predictStep';
    this.checkInput(x, where);
    if (x.shape[1] !== 1) throw new RangeError(`${where}: x must hold one step: [batch, 1, ...], got ${formatShape(x.shape)}`);
    const recurrent = this.layers.filter((l): l is RecurrentBase => l instanceof RecurrentBase);
    for (const l of recurrent) l.carryStates = true;
    try {
      return (await this.forwardAll({ x }, false, false, undefined)).flow.x;
    } finally {
      for (const l of recurrent) l.carryStates = false;
    }
  }

  /**
   * A stream: this model applied step by step to one sequence, with its own state for every
   * recurrent layer (unidirectional layers only; see lib/serve/stream.ts). step(x_t) and
   * feed(chunk) advance it; snapshot/restore/fork and toBytes/fromBytes copy its state.
   */
  openStream(options: OpenStreamOptions = {}): ModelStream {
    const where = 'Sequential.openStream';
    checkOptions(options, `${where}: options`, OPEN_STREAM_OPTIONS);
    const batchInvariant = flag(options.batchInvariant, `${where}: options.batchInvariant`, true);
    const stream = new ModelStream(engineFor(this, { batchInvariant }));
    if (options.from !== undefined) stream.restore(options.from);
    return stream;
  }

  // ------------------------------------------------------------------------------------------
  // description

  /** A Keras-like table: each layer, its output shape and parameter count; printed unless print is false. */
  summary(print = true): string {
    const rows: [string, string, string][] = [['Layer (type)', 'Output Shape', 'Param #']];
    let total = 0;
    this.layers.forEach((l, i) => {
      const count = Object.values(layerParameters(l)).reduce((a, t) => a + t.size, 0);
      total += count;
      const shape = this.shapes[i] ? `(None, ${this.shapes[i].map((d) => d ?? 'None').join(', ')})` : '(unbuilt)';
      const inner = l instanceof TimeDistributed ? '(Dense)' : l.className === 'Bidirectional' ? `(${(l as unknown as { forwardLayer: { className: string } }).forwardLayer.className})` : '';
      rows.push([`${i} ${l.className}${inner}`, shape, String(count)]);
    });
    const widths = [0, 1, 2].map((c) => Math.max(...rows.map((r) => r[c].length)) + 2);
    const line = (r: string[]) => r.map((s, c) => (c === 2 ? s.padStart(widths[c]) : s.padEnd(widths[c]))).join('');
    const sep = '─'.repeat(widths.reduce((a, b) => a + b, 0));
    const text = [`Model: "${this.name}"`, sep, line(rows[0]), sep, ...rows.slice(1).map(line), sep, `Total params: ${total.toLocaleString('en-US')}`, sep].join('\n');
    if (print) console.log(text);
    return text;
  }

  /** @internal How the model was compiled, for model.json (metric objects are not saved, only names). */
  compileConfig(): { loss: unknown; metrics: string[]; optimizer: { className: string; config: Record<string, unknown> } } | undefined {
    if (!this.compiled) return undefined;
    const loss = this.compiled.fused ? { ...this.compiled.loss.getConfig(), fromLogits: false } : this.compiled.loss.getConfig();
    return { loss, metrics: this.compiled.metrics.filter((m): m is MetricName => typeof m === 'string'), optimizer: this.compiled.optimizer.getConfig() };
  }

  /**
   * Saves to directory `dir`: model.json, model.safetensors (PyTorch names) and, when compiled,
   * optimizer.safetensors (options.includeOptimizer, default true). Atomic: see persistence.ts.
   */
  async save(dir: string, options?: SaveOptions): Promise<void> {
    await saveModel(this, dir, options);
  }

  /** Loads the weights of a saved model of the same architecture (checked in full before anything changes). */
  async loadWeights(dir: string): Promise<void> {
    await loadWeightsInto(this, dir);
  }

  /** A new model from getConfig()'s output (fresh weights; load them with loadWeights). */
  static fromConfig(c: unknown): Sequential {
    if (typeof c !== 'object' || c === null || (c as { className?: unknown }).className !== 'Sequential') {
      throw new TypeError(`Sequential.fromConfig: expected { className: 'Sequential', config }, got ${show(c)}`);
    }
    const config = (c as { config?: { name?: string; seed?: number; inputShape?: (number | null)[]; layers?: unknown } }).config;
    if (typeof config !== 'object' || config === null || !Array.isArray(config.layers)) throw new TypeError('Sequential.fromConfig: config.layers must be an array');
    const layers = config.layers.map((l, i) => layerFromConfig(l, `Sequential.fromConfig: config.layers[${i}]`));
    return new Sequential(layers, {
      ...(config.name !== undefined ? { name: config.name } : {}),
      ...(config.seed !== undefined ? { seed: config.seed } : {}),
      ...(config.inputShape !== undefined ? { inputShape: config.inputShape } : {}),
    });
  }

  /** A JSON-safe description that fromConfig turns back into an equal (untrained) model. */
  getConfig(): { className: 'Sequential'; config: { name: string; seed?: number; inputShape?: (number | null)[]; layers: ReturnType<typeof layerConfig>[] } } {
    return {
      className: 'Sequential',
      config: {
        name: this.name,
        ...(this.seed !== undefined ? { seed: this.seed } : {}),
        ...(this.inputShapeSpec ? { inputShape: this.inputShapeSpec } : {}),
        layers: this.layers.map(layerConfig),
      },
    };
  }
}

