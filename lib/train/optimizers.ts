// First-order optimizers updating parameter Tensors in place, and global gradient-norm clipping.
// Per-parameter state (moments, momentum) is keyed by the parameter Tensor itself (a WeakMap), so
// the record keys only pair parameters with their gradients and may differ from call to call.
import { checkOptions, optionNames, show } from '../options.js';
import { parameterChanged } from '../params.js';
import { scheduleFromConfig, type LearningRateSchedule } from './schedules.js';
import { bufferProblem, checkTensor, describeBufferProblem, elementCount, shapeSize, Tensor, type TensorData } from '../tensor.js';

/** Throws a TypeError naming `what` when t's memory is gone (a detached or out-of-bounds buffer). */
function checkUsable(t: Tensor, what: string): void {
  if (elementCount(t.data) > 0 || shapeSize(t.shape) === 0) return;
  const problem = bufferProblem(t.data);
  if (problem) throw new TypeError(`${what}: ${describeBufferProblem(problem)}`);
}

export interface Optimizer {
  readonly className: string;
  /** Base learning rate (settable: ReduceLROnPlateau lowers it). */
  learningRate: number;
  /** The rate the next step uses: the schedule's at the current iteration, else learningRate. */
  currentLearningRate(): number;
  /** Steps taken (step() calls). */
  iterations: number;
  /**
   * Updates every params[k] in place from grads[k]. Both records must have the same keys, and each
   * gradient the shape of its parameter (any float dtype); nothing is changed if a check fails.
   * The gradient tensors are never modified (clipping works on copies).
   */
  step(params: Record<string, Tensor>, grads: Record<string, Tensor>): void;
  /** JSON-safe options that optimizerFromConfig turns back into an equal optimizer. */
  getConfig(): { className: string; config: Record<string, unknown> };
  /** The state (copies, float64) keyed by the names in `params`. */
  getState(params: Record<string, Tensor>): OptimizerState;
  /** Restores getState's output for the same names and shapes; checks everything before changing anything. */
  setState(params: Record<string, Tensor>, state: OptimizerState): void;
}

export interface OptimizerState {
  iterations: number;
  learningRate: number;
  /** Per parameter name, per slot ('m', 'v', 'vmax', 'momentum', 'squareAvg', 'gradAvg', 'sum'). */
  slots: Record<string, Record<string, Float64Array>>;
  /** Per-parameter step counts ('<name>') when they differ from iterations. */
  extra?: Record<string, number>;
}

/** Options every optimizer takes. */
export interface CommonOptions {
  /** Step size (Keras name). */
  learningRate?: number;
  /** Alias of learningRate (PyTorch name); give one of the two. */
  lr?: number;
  /** Clip the global L2 norm of all the gradients of one step to this (default off). */
  clipNorm?: number;
  /** Clamp every gradient element to [−clipValue, clipValue] (default off). */
  clipValue?: number;
  /** L2 penalty added to the gradient (PyTorch weight_decay; AdamW: decoupled decay). */
  weightDecay?: number;
  /** A learning-rate schedule (stepDecay, exponentialDecay, cosineDecay). */
  schedule?: LearningRateSchedule;
}
export interface SGDOptions extends CommonOptions {
  /** Momentum factor in [0, 1) (default 0). */
  momentum?: number;
  /** Dampening of the momentum (default 0). */
  dampening?: number;
  /** Nesterov momentum (default false; needs momentum > 0 and dampening 0). */
  nesterov?: boolean;
}
export interface AdamOptions extends CommonOptions {
  /** Default 0.9. */ beta1?: number;
  /** Default 0.999. */ beta2?: number;
  /** Default 1e-8. */ eps?: number;
  /** AMSGrad (default false). */ amsgrad?: boolean;
}
export interface RMSpropOptions extends CommonOptions {
  /** Decay of the squared-gradient average (PyTorch alpha; default 0.99). */ rho?: number;
  /** Default 1e-8. */ eps?: number;
  /** Default 0. */ momentum?: number;
  /** Normalise by the variance estimate (default false). */ centered?: boolean;
}
export interface AdagradOptions extends CommonOptions {
  /** Default 0. */ lrDecay?: number;
  /** Default 0. */ initialAccumulatorValue?: number;
  /** Default 1e-10. */ eps?: number;
}

/** Returns v when it is a finite number satisfying `ok`; otherwise a RangeError quoting `range`. */
function checkNumber(v: unknown, what: string, ok: (x: number) => boolean, range: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) {
    throw new RangeError(`${what}: expected a number in ${range}, got ${show(v)}`);
  }
  return v;
}

const COMMON = { learningRate: true, lr: true, clipNorm: true, clipValue: true, weightDecay: true, schedule: true } as const;
const positive = (x: number): boolean => x > 0;
const nonNegative = (x: number): boolean => x >= 0;
const belowOne = (x: number): boolean => x >= 0 && x < 1;

/** Checks that params and grads pair up (same keys, matching shapes) and returns the pairs. */
function pairUp(where: string, params: Record<string, Tensor>, grads: Record<string, Tensor>): [Tensor, Tensor][] {
  if (typeof params !== 'object' || params === null) throw new TypeError(`${where}: params must be an object of Tensors`);
  if (typeof grads !== 'object' || grads === null) throw new TypeError(`${where}: grads must be an object of Tensors`);
  const extra = Object.keys(grads).filter((k) => !(k in params));
  if (extra.length) throw new RangeError(`${where}: grads has key(s) ${extra.join(', ')} that params lacks`);
  return Object.entries(params).map(([key, p]) => {
    if (!Tensor.isTensor(p)) throw new TypeError(`${where}: params.${key} must be a Tensor`);
    checkUsable(p, `${where}: params.${key}`);
    const g = grads[key];
    if (g === undefined) throw new RangeError(`${where}: grads.${key} is missing`);
    const dtype = Tensor.isTensor(g) ? g.dtype : p.dtype;
    return [p, checkTensor(g, `${where}: grads.${key} (shape of params.${key})`, p.shape, p.shape.map(() => ''), dtype)];
  });
}

type Slots = Record<string, Float64Array>;

/** What every optimizer shares: options, clipping, the schedule, per-parameter state and checkpoints. */
abstract class BaseOptimizer implements Optimizer {
  abstract readonly className: string;
  learningRate: number;
  iterations = 0;
  readonly clipNorm: number;
  readonly clipValue: number;
  readonly weightDecay: number;
  readonly schedule: LearningRateSchedule | undefined;
  protected readonly state = new WeakMap<Tensor, { slots: Slots; t: number }>();
  protected abstract readonly slotNames: readonly string[];

  protected constructor(name: string, options: CommonOptions, allowed: readonly string[], defaultRate: number | undefined, defaultDecay = 0) {
    if (typeof options !== 'object' || options === null) throw new TypeError(`${name}: options: expected an object, got ${show(options)}`);
    checkOptions(options, `${name}: options`, allowed);
    if (options.learningRate !== undefined && options.lr !== undefined) throw new TypeError(`${name}: options.learningRate and options.lr are the same option; give one`);
    const rate = options.learningRate ?? options.lr ?? defaultRate;
    const rateName = options.lr !== undefined ? 'lr' : 'learningRate';
    this.learningRate = checkNumber(rate, `${name}: ${rateName}`, positive, '(0, ∞)');
    this.clipNorm = options.clipNorm === undefined ? 0 : checkNumber(options.clipNorm, `${name}: clipNorm`, positive, '(0, ∞)');
    this.clipValue = options.clipValue === undefined ? 0 : checkNumber(options.clipValue, `${name}: clipValue`, positive, '(0, ∞)');
    this.weightDecay = checkNumber(options.weightDecay ?? defaultDecay, `${name}: weightDecay`, nonNegative, '[0, ∞)');
    if (options.schedule !== undefined && (typeof options.schedule !== 'object' || options.schedule === null || typeof options.schedule.at !== 'function')) {
      throw new TypeError(`${name}: options.schedule must be a schedule (stepDecay, exponentialDecay, cosineDecay), got ${show(options.schedule)}`);
    }
    this.schedule = options.schedule;
  }

  /** PyTorch's name of the learning rate. */
  get lr(): number {
    return this.learningRate;
  }
  set lr(v: number) {
    this.learningRate = v;
  }

  currentLearningRate(): number {
    return this.schedule ? this.schedule.at(this.learningRate, this.iterations) : this.learningRate;
  }

  protected commonConfig(): Record<string, unknown> {
    return {
      learningRate: this.learningRate,
      ...(this.clipNorm ? { clipNorm: this.clipNorm } : {}),
      ...(this.clipValue ? { clipValue: this.clipValue } : {}),
      weightDecay: this.weightDecay,
      ...(this.schedule ? { schedule: this.schedule.getConfig() } : {}),
    };
  }
  abstract getConfig(): { className: string; config: Record<string, unknown> };

  /** Updates one parameter p from its (clipped) gradient g with rate lr; s: its slots, t: its step (1-based). */
  protected abstract update(p: TensorData, g: Float64Array, lr: number, s: Slots, t: number): void;

  step(params: Record<string, Tensor>, grads: Record<string, Tensor>): void {
    const pairs = pairUp(`${this.className}.step`, params, grads);
    const gs = pairs.map(([, g]) => Float64Array.from(g.data));
    if (this.clipValue > 0) for (const g of gs) for (let k = 0; k < g.length; k++) g[k] = Math.min(this.clipValue, Math.max(-this.clipValue, g[k]));
    if (this.clipNorm > 0) {
      let sq = 0;
      for (const g of gs) for (let k = 0; k < g.length; k++) sq += g[k] * g[k];
      const norm = Math.sqrt(sq);
      // PyTorch clip_grad_norm_: scale by maxNorm / (norm + 1e-6) when that is below 1.
      const scale = this.clipNorm / (norm + 1e-6);
      if (Number.isFinite(norm) && scale < 1) for (const g of gs) for (let k = 0; k < g.length; k++) g[k] *= scale;
    }
    const lr = this.currentLearningRate();
    pairs.forEach(([param], i) => {
      let st = this.state.get(param);
      if (!st) {
        st = { slots: this.initialSlots(param.data.length), t: 0 };
        this.state.set(param, st);
      }
      st.t++;
      this.update(param.data, gs[i], lr, st.slots, st.t);
      parameterChanged(param);
    });
    this.iterations++;
  }

  protected initialSlots(n: number): Slots {
    return Object.fromEntries(this.slotNames.map((name) => [name, new Float64Array(n)]));
  }

  getState(params: Record<string, Tensor>): OptimizerState {
    const slots: OptimizerState['slots'] = {};
    const extra: Record<string, number> = {};
    for (const [name, p] of Object.entries(params)) {
      const st = this.state.get(p);
      if (!st) continue;
      slots[name] = Object.fromEntries(Object.entries(st.slots).map(([k, v]) => [k, v.slice()]));
      extra[name] = st.t;
    }
    return { iterations: this.iterations, learningRate: this.learningRate, slots, extra };
  }

  setState(params: Record<string, Tensor>, state: OptimizerState): void {
    const where = `${this.className}.setState`;
    if (typeof state !== 'object' || state === null || typeof state.slots !== 'object' || state.slots === null) throw new TypeError(`${where}: expected the output of getState()`);
    if (!Number.isSafeInteger(state.iterations) || state.iterations < 0) throw new RangeError(`${where}: iterations must be a non-negative integer, got ${show(state.iterations)}`);
    const staged: [Tensor, { slots: Slots; t: number }][] = [];
    for (const [name, slots] of Object.entries(state.slots)) {
      const p = params[name];
      if (!p) throw new RangeError(`${where}: state for ${name}, which is not a parameter`);
      for (const slot of this.slotNames) {
        const v = slots[slot];
        if (!(v instanceof Float64Array)) throw new RangeError(`${where}: ${name}: slot ${slot} is missing`);
        if (v.length !== p.data.length) throw new RangeError(`${where}: ${name}: slot ${slot} has ${v.length} values, the parameter ${p.data.length}`);
      }
      const t = state.extra?.[name] ?? state.iterations;
      if (!Number.isSafeInteger(t) || t < 0) throw new RangeError(`${where}: ${name}: step count must be a non-negative integer, got ${show(t)}`);
      staged.push([p, { slots: Object.fromEntries(this.slotNames.map((k) => [k, slots[k].slice()])), t }]);
    }
    for (const [p, st] of staged) this.state.set(p, st);
    this.iterations = state.iterations;
    if (typeof state.learningRate === 'number' && state.learningRate > 0) this.learningRate = state.learningRate;
  }
}

const SGD_OPTIONS = optionNames<SGDOptions>({ ...COMMON, momentum: true, dampening: true, nesterov: true });
const ADAM_OPTIONS = optionNames<AdamOptions>({ ...COMMON, beta1: true, beta2: true, eps: true, amsgrad: true });
const RMSPROP_OPTIONS = optionNames<RMSpropOptions>({ ...COMMON, rho: true, eps: true, momentum: true, centered: true });
const ADAGRAD_OPTIONS = optionNames<AdagradOptions>({ ...COMMON, lrDecay: true, initialAccumulatorValue: true, eps: true });

/**
 * Stochastic gradient descent in PyTorch's arrangement (torch.optim.SGD): g ← g + λp;
 * b ← μ b + (1 − dampening) g (b = g on the first step); g ← g + μ b (Nesterov) or b; p ← p − lr g.
 * learningRate is required.
 */
export class SGD extends BaseOptimizer {
  readonly className = 'SGD';
  readonly momentum: number;
  readonly dampening: number;
  readonly nesterov: boolean;
  protected readonly slotNames: readonly string[];
  constructor(options: SGDOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('SGD: options must be an object with learningRate');
    super('SGD', options, SGD_OPTIONS, undefined);
    this.momentum = checkNumber(options.momentum ?? 0, 'SGD: momentum', belowOne, '[0, 1)');
    this.dampening = checkNumber(options.dampening ?? 0, 'SGD: dampening', belowOne, '[0, 1)');
    this.nesterov = options.nesterov ?? false;
    if (typeof this.nesterov !== 'boolean') throw new TypeError('SGD: nesterov: expected a boolean');
    if (this.nesterov && (this.momentum === 0 || this.dampening !== 0)) throw new RangeError('SGD: nesterov needs momentum > 0 and dampening 0');
    this.slotNames = this.momentum > 0 ? ['momentum'] : [];
  }
  getConfig() {
    return { className: 'SGD', config: { ...this.commonConfig(), momentum: this.momentum, dampening: this.dampening, nesterov: this.nesterov } };
  }
  protected update(p: TensorData, g: Float64Array, lr: number, s: Slots, t: number): void {
    const { weightDecay: wd, momentum: mu, dampening } = this;
    for (let k = 0; k < p.length; k++) {
      let gk = g[k] + wd * p[k];
      if (mu > 0) {
        const b = s.momentum;
        b[k] = t === 1 ? gk : mu * b[k] + (1 - dampening) * gk;
        gk = this.nesterov ? gk + mu * b[k] : b[k];
      }
      p[k] -= lr * gk;
    }
  }
}

/**
 * Adam (Kingma & Ba 2015) in PyTorch's arrangement (torch.optim.Adam, weightDecay as L2 in the
 * gradient): m ← β₁ m + (1 − β₁) g, v ← β₂ v + (1 − β₂) g², p ← p − lr/(1 − β₁ᵗ) · m / (√v̂/√(1 − β₂ᵗ) + ε),
 * v̂ = v or, with amsgrad, max of every v so far. Default learningRate 1e-3.
 */
export class Adam extends BaseOptimizer {
  readonly className: string = 'Adam';
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly amsgrad: boolean;
  protected readonly slotNames: readonly string[];
  protected readonly decoupled: boolean = false;
  constructor(options: AdamOptions = {}, name = 'Adam', defaultDecay = 0) {
    super(name, options, ADAM_OPTIONS, 1e-3, defaultDecay);
    this.beta1 = checkNumber(options.beta1 ?? 0.9, `${name}: beta1`, belowOne, '[0, 1)');
    this.beta2 = checkNumber(options.beta2 ?? 0.999, `${name}: beta2`, belowOne, '[0, 1)');
    this.eps = checkNumber(options.eps ?? 1e-8, `${name}: eps`, nonNegative, '[0, ∞)');
    this.amsgrad = options.amsgrad ?? false;
    if (typeof this.amsgrad !== 'boolean') throw new TypeError(`${name}: amsgrad: expected a boolean`);
    this.slotNames = this.amsgrad ? ['m', 'v', 'vmax'] : ['m', 'v'];
  }
  getConfig() {
    return { className: this.className, config: { ...this.commonConfig(), beta1: this.beta1, beta2: this.beta2, eps: this.eps, amsgrad: this.amsgrad } };
  }
  protected update(p: TensorData, g: Float64Array, lr: number, s: Slots, t: number): void {
    const { beta1, beta2, eps, weightDecay: wd } = this;
    const bc1 = 1 - beta1 ** t, sqrtBc2 = Math.sqrt(1 - beta2 ** t);
    const stepSize = lr / bc1;
    const { m, v, vmax } = s;
    for (let k = 0; k < p.length; k++) {
      let gk = g[k];
      if (this.decoupled) p[k] *= 1 - lr * wd;
      else gk += wd * p[k];
      m[k] = beta1 * m[k] + (1 - beta1) * gk;
      v[k] = beta2 * v[k] + (1 - beta2) * gk * gk;
      let vk = v[k];
      if (vmax) vk = vmax[k] = Math.max(vmax[k], vk);
      p[k] -= (stepSize * m[k]) / (Math.sqrt(vk) / sqrtBc2 + eps);
    }
  }
}

/** AdamW (Loshchilov & Hutter 2019; torch.optim.AdamW): Adam with decoupled decay p ← p(1 − lr·λ), λ default 0.01. */
export class AdamW extends Adam {
  override readonly className = 'AdamW';
  protected override readonly decoupled = true;
  constructor(options: AdamOptions = {}) {
    super(options, 'AdamW', 0.01);
  }
}

/**
 * RMSprop (torch.optim.RMSprop): s ← ρ s + (1 − ρ) g²; with centered, ḡ ← ρ ḡ + (1 − ρ) g and
 * s − ḡ² in the denominator; p ← p − lr g/(√s + ε), or through a momentum buffer. Default learningRate 1e-2, ρ 0.99.
 */
export class RMSprop extends BaseOptimizer {
  readonly className = 'RMSprop';
  readonly rho: number;
  readonly eps: number;
  readonly momentum: number;
  readonly centered: boolean;
  protected readonly slotNames: readonly string[];
  constructor(options: RMSpropOptions = {}) {
    super('RMSprop', options, RMSPROP_OPTIONS, 1e-2);
    this.rho = checkNumber(options.rho ?? 0.99, 'RMSprop: rho', belowOne, '[0, 1)');
    this.eps = checkNumber(options.eps ?? 1e-8, 'RMSprop: eps', nonNegative, '[0, ∞)');
    this.momentum = checkNumber(options.momentum ?? 0, 'RMSprop: momentum', belowOne, '[0, 1)');
    this.centered = options.centered ?? false;
    if (typeof this.centered !== 'boolean') throw new TypeError('RMSprop: centered: expected a boolean');
    this.slotNames = ['squareAvg', ...(this.centered ? ['gradAvg'] : []), ...(this.momentum > 0 ? ['momentum'] : [])];
  }
  getConfig() {
    return { className: 'RMSprop', config: { ...this.commonConfig(), rho: this.rho, eps: this.eps, momentum: this.momentum, centered: this.centered } };
  }
  protected update(p: TensorData, g: Float64Array, lr: number, s: Slots): void {
    const { rho, eps, momentum: mu, weightDecay: wd } = this;
    const { squareAvg: sq, gradAvg: ga, momentum: buf } = s;
    for (let k = 0; k < p.length; k++) {
      const gk = g[k] + wd * p[k];
      sq[k] = rho * sq[k] + (1 - rho) * gk * gk;
      let avg: number;
      if (ga) {
        ga[k] = rho * ga[k] + (1 - rho) * gk;
        avg = Math.sqrt(sq[k] - ga[k] * ga[k]) + eps;
      } else {
        avg = Math.sqrt(sq[k]) + eps;
      }
      if (buf) {
        buf[k] = mu * buf[k] + gk / avg;
        p[k] -= lr * buf[k];
      } else {
        p[k] -= (lr * gk) / avg;
      }
    }
  }
}

/** Adagrad (torch.optim.Adagrad): sum ← sum + g², p ← p − lr/(1 + (t − 1)·lrDecay) · g/(√sum + ε). Default learningRate 1e-2. */
export class Adagrad extends BaseOptimizer {
  readonly className = 'Adagrad';
  readonly lrDecay: number;
  readonly initialAccumulatorValue: number;
  readonly eps: number;
  protected readonly slotNames: readonly string[] = ['sum'];
  constructor(options: AdagradOptions = {}) {
    super('Adagrad', options, ADAGRAD_OPTIONS, 1e-2);
    this.lrDecay = checkNumber(options.lrDecay ?? 0, 'Adagrad: lrDecay', nonNegative, '[0, ∞)');
    this.initialAccumulatorValue = checkNumber(options.initialAccumulatorValue ?? 0, 'Adagrad: initialAccumulatorValue', nonNegative, '[0, ∞)');
    this.eps = checkNumber(options.eps ?? 1e-10, 'Adagrad: eps', nonNegative, '[0, ∞)');
  }
  getConfig() {
    return { className: 'Adagrad', config: { ...this.commonConfig(), lrDecay: this.lrDecay, initialAccumulatorValue: this.initialAccumulatorValue, eps: this.eps } };
  }
  protected override initialSlots(n: number): Slots {
    return { sum: new Float64Array(n).fill(this.initialAccumulatorValue) };
  }
  protected update(p: TensorData, g: Float64Array, lr: number, s: Slots, t: number): void {
    const clr = lr / (1 + (t - 1) * this.lrDecay);
    const sum = s.sum, wd = this.weightDecay;
    for (let k = 0; k < p.length; k++) {
      const gk = g[k] + wd * p[k];
      sum[k] += gk * gk;
      p[k] -= (clr * gk) / (Math.sqrt(sum[k]) + this.eps);
    }
  }
}

/** An optimizer from getConfig()'s output. */
export function optimizerFromConfig(c: { className: string; config: Record<string, unknown> }): Optimizer {
  if (typeof c !== 'object' || c === null || typeof c.config !== 'object' || c.config === null) throw new TypeError(`optimizerFromConfig: expected { className, config }, got ${show(c)}`);
  const { schedule, ...rest } = c.config;
  const options = { ...rest, ...(schedule ? { schedule: scheduleFromConfig(schedule as never) } : {}) } as never;
  switch (c.className) {
    case 'SGD': return new SGD(options);
    case 'Adam': return new Adam(options);
    case 'AdamW': return new AdamW(options);
    case 'RMSprop': return new RMSprop(options);
    case 'Adagrad': return new Adagrad(options);
    default: throw new TypeError(`optimizerFromConfig: unknown optimizer ${show(c.className)}; known: SGD, Adam, AdamW, RMSprop, Adagrad`);
  }
}

/**
 * Scales all gradients in place by maxNorm / ‖g‖ when their global L2 norm ‖g‖ (over every element
 * of every tensor) exceeds maxNorm, and returns ‖g‖ as it was before clipping. A non-finite norm is
 * returned without touching the gradients, so the caller can skip that step.
 */
export function clipGradNorm(grads: Tensor[] | Record<string, Tensor>, maxNorm: number): number {
  if (typeof grads !== 'object' || grads === null) {
    throw new TypeError('clipGradNorm: grads must be an array or an object of Tensors');
  }
  checkNumber(maxNorm, 'clipGradNorm: maxNorm', positive, '(0, ∞)');
  const tensors = Array.isArray(grads) ? grads : Object.values(grads);
  const keys = Array.isArray(grads) ? undefined : Object.keys(grads);
  const key = (i: number): string => (keys ? `.${keys[i]}` : `[${i}]`);
  tensors.forEach((t, i) => {
    if (!Tensor.isTensor(t)) throw new TypeError(`clipGradNorm: grads${key(i)} must be a Tensor`);
    if (elementCount(t.data) === 0) checkUsable(t, `clipGradNorm: grads${key(i)}`);
  });
  let sumSq = 0;
  for (const t of tensors) for (let k = 0; k < t.data.length; k++) sumSq += t.data[k] * t.data[k];
  const norm = Math.sqrt(sumSq);
  if (Number.isFinite(norm) && norm > maxNorm) {
    const scale = maxNorm / norm;
    for (const t of tensors) for (let k = 0; k < t.data.length; k++) t.data[k] *= scale;
  }
  return norm;
}
