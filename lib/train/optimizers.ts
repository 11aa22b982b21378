// First-order optimizers updating parameter Tensors in place (PyTorch's update rules and defaults),
// learning-rate schedules applied per step, gradient clipping, and checkpointable state.
// Per-parameter state (moments, momentum, step count) is keyed by the parameter Tensor itself (a
// WeakMap), so the record keys only pair parameters with their gradients and may differ from call to
// call; getState/setState translate it to and from the names of one params record.
import { checkOptions, flag, optionNames, show } from '../options.js';
import { parameterChanged } from '../params.js';
import { scheduleFromConfig, type LearningRateSchedule } from './schedules.js';
import { bufferProblem, checkTensor, describeBufferProblem, elementCount, formatShape, shapeSize, Tensor, type TensorData } from '../tensor.js';

/** Throws a TypeError naming `what` when t's memory is gone (a detached or out-of-bounds buffer). */
function checkUsable(t: Tensor, what: string): void {
  if (elementCount(t.data) > 0 || shapeSize(t.shape) === 0) return;
  const problem = bufferProblem(t.data);
  if (problem) throw new TypeError(`${what}: ${describeBufferProblem(problem)}`);
}

/**
 * An optimizer: SGD, Adam, AdamW, RMSprop or Adagrad (or anything with these members). Every built-in
 * one keeps its moments in float64 whatever the parameters' dtype.
 */
export interface Optimizer {
  /** 'SGD' | 'Adam' | 'AdamW' | 'RMSprop' | 'Adagrad' for the built-in optimizers. */
  readonly className: string;
  /** Base learning rate, in (0, ∞) (settable: ReduceLROnPlateau lowers it). */
  learningRate: number;
  /** The rate the next step uses: schedule.at(learningRate, iterations), or learningRate without a schedule. */
  currentLearningRate(): number;
  /** Steps taken (counts step() calls; 0 for a new optimizer). */
  iterations: number;
  /**
   * Updates every params[k] in place from grads[k]. Both records must have the same keys, and each
   * gradient the shape of its parameter (any float dtype); nothing is changed if a check fails. The
   * gradient tensors are never modified (clipping works on copies).
   */
  step(params: Record<string, Tensor>, grads: Record<string, Tensor>): void;
  /** JSON-safe options (defaults filled in, schedule included) that recreate it with optimizerFromConfig. */
  getConfig(): { className: string; config: Record<string, unknown> };
  /** State for checkpoints, keyed by the names in `params` (slot arrays are float64 copies). */
  getState(params: Record<string, Tensor>): OptimizerState;
  /**
   * Restores state saved by getState for the same names and shapes. Everything is checked before
   * anything changes (a RangeError naming the parameter and slot).
   */
  setState(params: Record<string, Tensor>, state: OptimizerState): void;
}

/** An optimizer's state as getState returns it and setState takes it. */
export interface OptimizerState {
  /** The optimizer's iterations (step() calls so far). */
  iterations: number;
  /** Its base learning rate. */
  learningRate: number;
  /**
   * Per parameter name, per slot, one float64 value per element of the parameter. The slots are
   * SGD: 'momentum' (with momentum > 0; none without); Adam, AdamW: 'm', 'v' and, with amsgrad,
   * 'vmax'; RMSprop: 'squareAvg', 'gradAvg' (centered), 'momentum' (momentum > 0); Adagrad: 'sum'.
   */
  slots: Record<string, Record<string, Float64Array>>;
  /**
   * '<name>/step': how many steps updated that parameter (PyTorch's per-parameter step, used by
   * Adam's bias correction, Adagrad's lrDecay and SGD's first momentum step). getState writes one per
   * parameter; setState takes the optimizer's iterations for a parameter it lacks.
   */
  extra?: Record<string, number>;
}

/** Options every optimizer takes. */
export interface CommonOptions {
  /** Step size, in (0, ∞) (Keras's name; default per optimizer, SGD requires it). */
  learningRate?: number;
  /** Alias of learningRate (PyTorch's name); give one of the two. */
  lr?: number;
  /**
   * Before each step, scale all its gradients by clipNorm / ‖g‖ when their global L2 norm ‖g‖ (over
   * every element of every gradient of that step) exceeds clipNorm, like clipGradNorm (default off).
   * A non-finite norm leaves the gradients as they are. Applied after clipValue.
   */
  clipNorm?: number;
  /** Before each step, clamp every gradient element to [−clipValue, clipValue] (default off). */
  clipValue?: number;
  /**
   * Weight decay λ in [0, ∞): λ·p added to the gradient (PyTorch weight_decay, an L2 penalty); AdamW
   * decays the weights instead, p ← p·(1 − lr·λ). Default 0, AdamW 0.01.
   */
  weightDecay?: number;
  /** A learning-rate schedule (stepDecay, exponentialDecay, cosineDecay) applied to learningRate (default none). */
  schedule?: LearningRateSchedule;
}

/** Options of SGD (torch.optim.SGD). learningRate (or lr) is required. */
export interface SGDOptions extends CommonOptions {
  /** Momentum factor μ, in [0, 1) (default 0: plain gradient descent). */
  momentum?: number;
  /** Dampening of the gradient in the momentum buffer, in [0, 1] (default 0). */
  dampening?: number;
  /** Nesterov momentum (default false; needs momentum > 0 and dampening 0). */
  nesterov?: boolean;
}

/** Options of Adam and AdamW (torch.optim.Adam, torch.optim.AdamW). */
export interface AdamOptions extends CommonOptions {
  /** Decay of the first-moment average, in [0, 1) (default 0.9). */
  beta1?: number;
  /** Decay of the second-moment average, in [0, 1) (default 0.999). */
  beta2?: number;
  /** Added to √v̂ in the denominator, in [0, ∞) (default 1e-8). */
  eps?: number;
  /** AMSGrad: divide by the largest second moment so far (default false). */
  amsgrad?: boolean;
}

/** Options of RMSprop (torch.optim.RMSprop). */
export interface RMSpropOptions extends CommonOptions {
  /** Decay of the squared-gradient average (PyTorch's alpha), in [0, 1) (default 0.99). */
  rho?: number;
  /** Added to the root in the denominator, in [0, ∞) (default 1e-8). */
  eps?: number;
  /** Momentum factor, in [0, 1) (default 0). */
  momentum?: number;
  /** Divide by the estimated standard deviation (mean square minus squared mean) (default false). */
  centered?: boolean;
}

/** Options of Adagrad (torch.optim.Adagrad). */
export interface AdagradOptions extends CommonOptions {
  /** Rate decay: step t uses lr / (1 + (t − 1)·lrDecay), in [0, ∞) (default 0). */
  lrDecay?: number;
  /** Starting value of the squared-gradient sum, in [0, ∞) (default 0). */
  initialAccumulatorValue?: number;
  /** Added to √sum in the denominator, in [0, ∞) (default 1e-10). */
  eps?: number;
}

/** Returns v when it is a finite number satisfying `ok`; otherwise a RangeError quoting `range`. */
function checkNumber(v: unknown, what: string, ok: (x: number) => boolean, range: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) {
    throw new RangeError(`${what}: expected a number in ${range}, got ${show(v)}`);
  }
  return v;
}

const positive = (x: number): boolean => x > 0;
const nonNegative = (x: number): boolean => x >= 0;
const belowOne = (x: number): boolean => x >= 0 && x < 1;
const unitInterval = (x: number): boolean => x >= 0 && x <= 1;

const COMMON = { learningRate: true, lr: true, clipNorm: true, clipValue: true, weightDecay: true, schedule: true } as const;
const SGD_OPTIONS = optionNames<SGDOptions>({ ...COMMON, momentum: true, dampening: true, nesterov: true });
const ADAM_OPTIONS = optionNames<AdamOptions>({ ...COMMON, beta1: true, beta2: true, eps: true, amsgrad: true });
const RMSPROP_OPTIONS = optionNames<RMSpropOptions>({ ...COMMON, rho: true, eps: true, momentum: true, centered: true });
const ADAGRAD_OPTIONS = optionNames<AdagradOptions>({ ...COMMON, lrDecay: true, initialAccumulatorValue: true, eps: true });

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

/** Checks a params record for getState/setState and returns its entries. */
function namedTensors(where: string, params: Record<string, Tensor>): [string, Tensor][] {
  if (typeof params !== 'object' || params === null) throw new TypeError(`${where}: params must be an object of Tensors`);
  return Object.entries(params).map(([name, p]) => {
    if (!Tensor.isTensor(p)) throw new TypeError(`${where}: params.${name} must be a Tensor`);
    return [name, p];
  });
}

function isSchedule(v: unknown): v is LearningRateSchedule {
  const s = v as LearningRateSchedule;
  return typeof v === 'object' && v !== null && typeof s.at === 'function' && typeof s.getConfig === 'function' && typeof s.className === 'string';
}

type Slots = Record<string, Float64Array>;
/** One parameter's state: its slots and how many steps updated it. */
interface ParamState {
  slots: Slots;
  t: number;
}

/** What every optimizer shares: options, clipping, the schedule, per-parameter state and checkpoints. */
abstract class BaseOptimizer implements Optimizer {
  abstract readonly className: string;
  iterations = 0;
  /** Global-norm clipping threshold, or undefined (off). */
  readonly clipNorm: number | undefined;
  /** Element clipping threshold, or undefined (off). */
  readonly clipValue: number | undefined;
  /** Weight decay λ. */
  readonly weightDecay: number;
  /** The learning-rate schedule, or undefined. */
  readonly schedule: LearningRateSchedule | undefined;
  /** The slots every parameter has with these options (in getState's order). */
  protected abstract readonly slotNames: readonly string[];
  private rate: number;
  private readonly name: string;
  private readonly states = new WeakMap<Tensor, ParamState>();

  protected constructor(name: string, options: CommonOptions, allowed: readonly string[], defaultRate: number | undefined, defaultDecay: number) {
    if (typeof options !== 'object' || options === null || Array.isArray(options)) {
      throw new TypeError(`${name}: options: expected an object${defaultRate === undefined ? ' with learningRate' : ''}, got ${show(options)}`);
    }
    checkOptions(options, `${name}: options`, allowed);
    this.name = name;
    if (options.learningRate !== undefined && options.lr !== undefined) {
      throw new TypeError(`${name}: options.learningRate and options.lr are the same option (lr is PyTorch's name); give one`);
    }
    const rateName = options.lr !== undefined ? 'lr' : 'learningRate';
    const rate = options.learningRate ?? options.lr ?? defaultRate;
    this.rate = checkNumber(rate, `${name}: ${rateName}`, positive, defaultRate === undefined && rate === undefined ? '(0, ∞) (required; lr is an alias)' : '(0, ∞)');
    this.clipNorm = options.clipNorm === undefined ? undefined : checkNumber(options.clipNorm, `${name}: clipNorm`, positive, '(0, ∞)');
    this.clipValue = options.clipValue === undefined ? undefined : checkNumber(options.clipValue, `${name}: clipValue`, positive, '(0, ∞)');
    this.weightDecay = checkNumber(options.weightDecay ?? defaultDecay, `${name}: weightDecay`, nonNegative, '[0, ∞)');
    if (options.schedule !== undefined && !isSchedule(options.schedule)) {
      throw new TypeError(`${name}: options.schedule: expected a schedule (stepDecay, exponentialDecay, cosineDecay or scheduleFromConfig), got ${show(options.schedule)}`);
    }
    this.schedule = options.schedule;
  }

  get learningRate(): number {
    return this.rate;
  }
  set learningRate(v: number) {
    this.rate = checkNumber(v, `${this.name}: learningRate`, positive, '(0, ∞)');
  }
  /** PyTorch's name of learningRate (the same property). */
  get lr(): number {
    return this.rate;
  }
  set lr(v: number) {
    this.rate = checkNumber(v, `${this.name}: lr`, positive, '(0, ∞)');
  }

  currentLearningRate(): number {
    if (!this.schedule) return this.rate;
    const r = this.schedule.at(this.rate, this.iterations);
    if (typeof r !== 'number' || !Number.isFinite(r) || r < 0) {
      throw new RangeError(`${this.name}: the schedule (${this.schedule.className}) gave ${show(r)} at iteration ${this.iterations}; expected a number in [0, ∞)`);
    }
    return r;
  }

  /** The options all optimizers share, as getConfig writes them. */
  protected commonConfig(): Record<string, unknown> {
    return {
      learningRate: this.rate,
      ...(this.clipNorm !== undefined ? { clipNorm: this.clipNorm } : {}),
      ...(this.clipValue !== undefined ? { clipValue: this.clipValue } : {}),
      weightDecay: this.weightDecay,
      ...(this.schedule ? { schedule: this.schedule.getConfig() } : {}),
    };
  }
  abstract getConfig(): { className: string; config: Record<string, unknown> };

  /**
   * Updates one parameter p in place from its (clipped) gradient g with rate lr. s: its slots; t: its
   * step count including this step (1 on its first step).
   */
  protected abstract update(p: TensorData, g: TensorData, lr: number, s: Slots, t: number): void;

  /** A parameter's slots before its first step (zeros; Adagrad overrides). */
  protected initialSlots(n: number): Slots {
    return Object.fromEntries(this.slotNames.map((slot) => [slot, new Float64Array(n)]));
  }

  /** The gradients to use: the caller's arrays, or clipped float64 copies when clipping is on. */
  private clippedGradients(grads: Tensor[]): TensorData[] {
    const { clipNorm, clipValue } = this;
    if (clipNorm === undefined && clipValue === undefined) return grads.map((g) => g.data);
    const gs = grads.map((g) => Float64Array.from(g.data));
    if (clipValue !== undefined) {
      for (const g of gs) for (let k = 0; k < g.length; k++) g[k] = Math.min(clipValue, Math.max(-clipValue, g[k]));
    }
    if (clipNorm !== undefined) {
      let sumSq = 0;
      for (const g of gs) for (let k = 0; k < g.length; k++) sumSq += g[k] * g[k];
      const norm = Math.sqrt(sumSq);
      if (Number.isFinite(norm) && norm > clipNorm) {
        const scale = clipNorm / norm;
        for (const g of gs) for (let k = 0; k < g.length; k++) g[k] *= scale;
      }
    }
    return gs;
  }

  step(params: Record<string, Tensor>, grads: Record<string, Tensor>): void {
    const pairs = pairUp(`${this.className}.step`, params, grads);
    const lr = this.currentLearningRate();
    const gs = this.clippedGradients(pairs.map(([, g]) => g));
    pairs.forEach(([param], i) => {
      let st = this.states.get(param);
      if (!st) this.states.set(param, (st = { slots: this.initialSlots(param.size), t: 0 }));
      this.update(param.data, gs[i], lr, st.slots, st.t + 1);
      st.t++;
      parameterChanged(param);
    });
    this.iterations++;
  }

  getState(params: Record<string, Tensor>): OptimizerState {
    const slots: OptimizerState['slots'] = {};
    const extra: Record<string, number> = {};
    for (const [name, p] of namedTensors(`${this.className}.getState`, params)) {
      const st = this.states.get(p) ?? { slots: this.initialSlots(p.size), t: 0 };
      if (this.slotNames.length > 0) slots[name] = Object.fromEntries(this.slotNames.map((slot) => [slot, Float64Array.from(st.slots[slot])]));
      extra[`${name}/step`] = st.t;
    }
    return { iterations: this.iterations, learningRate: this.rate, slots, extra };
  }

  setState(params: Record<string, Tensor>, state: OptimizerState): void {
    const where = `${this.className}.setState`;
    const named = namedTensors(where, params);
    if (typeof state !== 'object' || state === null) throw new TypeError(`${where}: state: expected the output of getState(), got ${show(state)}`);
    const { iterations, learningRate, slots, extra = {} } = state;
    if (typeof iterations !== 'number' || !Number.isSafeInteger(iterations) || iterations < 0) {
      throw new RangeError(`${where}: state.iterations: expected an integer ≥ 0, got ${show(iterations)}`);
    }
    checkNumber(learningRate, `${where}: state.learningRate`, positive, '(0, ∞)');
    if (typeof slots !== 'object' || slots === null) throw new TypeError(`${where}: state.slots: expected an object, got ${show(slots)}`);
    if (typeof extra !== 'object' || extra === null) throw new TypeError(`${where}: state.extra: expected an object, got ${show(extra)}`);
    const names = new Set(named.map(([name]) => name));
    for (const name of Object.keys(slots)) {
      if (!names.has(name)) throw new RangeError(`${where}: state.slots.${name}: ${show(name)} is not in params (${[...names].join(', ')})`);
    }
    for (const key of Object.keys(extra)) {
      if (!(key.endsWith('/step') && names.has(key.slice(0, -5)))) {
        throw new RangeError(`${where}: state.extra[${show(key)}]: expected '<parameter>/step' for a parameter in params`);
      }
    }
    const staged: [Tensor, ParamState][] = named.map(([name, p]) => {
      const given = slots[name];
      if (this.slotNames.length > 0 && given === undefined) {
        throw new RangeError(`${where}: state.slots.${name} is missing (${this.className} keeps ${this.slotNames.join(', ')} per parameter)`);
      }
      const copies: Slots = {};
      if (given !== undefined) {
        if (typeof given !== 'object' || given === null) throw new TypeError(`${where}: state.slots.${name}: expected an object of Float64Arrays, got ${show(given)}`);
        for (const slot of Object.keys(given)) {
          if (!this.slotNames.includes(slot)) {
            throw new RangeError(`${where}: state.slots.${name}.${slot}: not a slot of this ${this.className} (it keeps ${this.slotNames.join(', ') || 'none'})`);
          }
        }
        for (const slot of this.slotNames) {
          const v = given[slot];
          if (v === undefined) throw new RangeError(`${where}: state.slots.${name}.${slot} is missing`);
          if (!(v instanceof Float64Array)) throw new TypeError(`${where}: state.slots.${name}.${slot}: expected a Float64Array, got ${show(v)}`);
          if (v.length !== p.size) {
            throw new RangeError(`${where}: state.slots.${name}.${slot}: expected ${p.size} values (params.${name} has shape ${formatShape(p.shape)}), got ${v.length}`);
          }
          copies[slot] = Float64Array.from(v);
        }
      }
      const t = extra[`${name}/step`] ?? iterations;
      if (typeof t !== 'number' || !Number.isSafeInteger(t) || t < 0) {
        throw new RangeError(`${where}: state.extra[${show(`${name}/step`)}]: expected an integer ≥ 0, got ${show(t)}`);
      }
      return [p, { slots: copies, t }];
    });
    for (const [p, st] of staged) this.states.set(p, st);
    this.iterations = iterations;
    this.rate = learningRate;
  }
}

/**
 * Stochastic gradient descent (torch.optim.SGD), per element:
 *   d ← g + λ p;  b ← d on a parameter's first step, else b ← μ b + (1 − dampening) d  (momentum μ > 0);
 *   d ← d + μ b (nesterov) or b;  p ← p − lr d.
 * Options (SGDOptions and CommonOptions): learningRate (required; lr is an alias), momentum 0,
 * dampening 0, nesterov false, weightDecay 0, clipNorm, clipValue, schedule.
 */
export class SGD extends BaseOptimizer {
  readonly className = 'SGD';
  readonly momentum: number;
  readonly dampening: number;
  readonly nesterov: boolean;
  protected readonly slotNames: readonly string[];
  constructor(options: SGDOptions) {
    super('SGD', options, SGD_OPTIONS, undefined, 0);
    this.momentum = checkNumber(options.momentum ?? 0, 'SGD: momentum', belowOne, '[0, 1)');
    this.dampening = checkNumber(options.dampening ?? 0, 'SGD: dampening', unitInterval, '[0, 1]');
    this.nesterov = flag(options.nesterov, 'SGD: nesterov', false);
    if (this.nesterov && (this.momentum === 0 || this.dampening !== 0)) {
      throw new RangeError(`SGD: nesterov: needs momentum > 0 and dampening 0, got momentum ${this.momentum}, dampening ${this.dampening}`);
    }
    this.slotNames = this.momentum > 0 ? ['momentum'] : [];
  }
  getConfig(): { className: string; config: Record<string, unknown> } {
    return { className: 'SGD', config: { ...this.commonConfig(), momentum: this.momentum, dampening: this.dampening, nesterov: this.nesterov } };
  }
  protected update(p: TensorData, g: TensorData, lr: number, s: Slots, t: number): void {
    const { weightDecay: wd, momentum: mu, dampening, nesterov } = this;
    const b = s.momentum;
    for (let k = 0; k < p.length; k++) {
      let d = wd === 0 ? g[k] : g[k] + wd * p[k];
      if (b) {
        b[k] = t === 1 ? d : mu * b[k] + (1 - dampening) * d;
        d = nesterov ? d + mu * b[k] : b[k];
      }
      p[k] -= lr * d;
    }
  }
}

/** Adam and AdamW: the same moments, the weight decay either in the gradient or decoupled. */
abstract class AdamBase extends BaseOptimizer {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly amsgrad: boolean;
  protected readonly slotNames: readonly string[];
  private readonly decoupled: boolean;
  protected constructor(name: string, options: AdamOptions, decoupled: boolean) {
    super(name, options, ADAM_OPTIONS, 1e-3, decoupled ? 0.01 : 0);
    this.decoupled = decoupled;
    this.beta1 = checkNumber(options.beta1 ?? 0.9, `${name}: beta1`, belowOne, '[0, 1)');
    this.beta2 = checkNumber(options.beta2 ?? 0.999, `${name}: beta2`, belowOne, '[0, 1)');
    this.eps = checkNumber(options.eps ?? 1e-8, `${name}: eps`, nonNegative, '[0, ∞)');
    this.amsgrad = flag(options.amsgrad, `${name}: amsgrad`, false);
    this.slotNames = this.amsgrad ? ['m', 'v', 'vmax'] : ['m', 'v'];
  }
  getConfig(): { className: string; config: Record<string, unknown> } {
    return { className: this.className, config: { ...this.commonConfig(), beta1: this.beta1, beta2: this.beta2, eps: this.eps, amsgrad: this.amsgrad } };
  }
  protected update(p: TensorData, g: TensorData, lr: number, s: Slots, t: number): void {
    const { beta1, beta2, eps, weightDecay: wd, decoupled } = this;
    const stepSize = lr / (1 - beta1 ** t);
    const sqrtBc2 = Math.sqrt(1 - beta2 ** t);
    const decay = 1 - lr * wd;
    const { m, v, vmax } = s;
    for (let k = 0; k < p.length; k++) {
      let gk = g[k];
      if (wd !== 0) {
        if (decoupled) p[k] *= decay;
        else gk += wd * p[k];
      }
      m[k] = beta1 * m[k] + (1 - beta1) * gk;
      v[k] = beta2 * v[k] + (1 - beta2) * gk * gk;
      const vk = vmax ? (vmax[k] = Math.max(vmax[k], v[k])) : v[k];
      p[k] -= (stepSize * m[k]) / (Math.sqrt(vk) / sqrtBc2 + eps);
    }
  }
}

/**
 * Adam (Kingma & Ba 2015) with bias correction, in PyTorch's arrangement (torch.optim.Adam):
 *   g ← g + λ p,  m ← β₁ m + (1 − β₁) g,  v ← β₂ v + (1 − β₂) g²,  v̂ ← max(v̂, v) (amsgrad) or v,
 *   p ← p − lr / (1 − β₁ᵗ) · m / (√v̂ / √(1 − β₂ᵗ) + ε),
 * t counting the steps taken by that parameter; moments in float64. Options (AdamOptions and
 * CommonOptions): learningRate 1e-3 (lr is an alias), beta1 0.9, beta2 0.999, eps 1e-8, weightDecay 0
 * (L2, added to the gradient), amsgrad false, clipNorm, clipValue, schedule.
 */
export class Adam extends AdamBase {
  readonly className = 'Adam';
  constructor(options: AdamOptions = {}) {
    super('Adam', options, false);
  }
}

/**
 * AdamW (Loshchilov & Hutter 2019; torch.optim.AdamW): Adam with decoupled weight decay, p ← p·(1 − lr·λ)
 * before the Adam update (which then uses the raw gradient). Options as Adam's, but weightDecay
 * defaults to 0.01.
 */
export class AdamW extends AdamBase {
  readonly className = 'AdamW';
  constructor(options: AdamOptions = {}) {
    super('AdamW', options, true);
  }
}

/**
 * RMSprop (torch.optim.RMSprop), per element:
 *   g ← g + λ p,  s ← ρ s + (1 − ρ) g²,  a ← √(s − ḡ²) + ε with ḡ ← ρ ḡ + (1 − ρ) g (centered), else √s + ε;
 *   b ← μ b + g / a, p ← p − lr b (momentum μ > 0), else p ← p − lr g / a.
 * Options (RMSpropOptions and CommonOptions): learningRate 1e-2 (lr is an alias), rho 0.99 (PyTorch's
 * alpha), eps 1e-8, momentum 0, centered false, weightDecay 0, clipNorm, clipValue, schedule.
 */
export class RMSprop extends BaseOptimizer {
  readonly className = 'RMSprop';
  readonly rho: number;
  readonly eps: number;
  readonly momentum: number;
  readonly centered: boolean;
  protected readonly slotNames: readonly string[];
  constructor(options: RMSpropOptions = {}) {
    super('RMSprop', options, RMSPROP_OPTIONS, 1e-2, 0);
    this.rho = checkNumber(options.rho ?? 0.99, 'RMSprop: rho', belowOne, '[0, 1)');
    this.eps = checkNumber(options.eps ?? 1e-8, 'RMSprop: eps', nonNegative, '[0, ∞)');
    this.momentum = checkNumber(options.momentum ?? 0, 'RMSprop: momentum', belowOne, '[0, 1)');
    this.centered = flag(options.centered, 'RMSprop: centered', false);
    this.slotNames = ['squareAvg', ...(this.centered ? ['gradAvg'] : []), ...(this.momentum > 0 ? ['momentum'] : [])];
  }
  getConfig(): { className: string; config: Record<string, unknown> } {
    return { className: 'RMSprop', config: { ...this.commonConfig(), rho: this.rho, eps: this.eps, momentum: this.momentum, centered: this.centered } };
  }
  protected update(p: TensorData, g: TensorData, lr: number, s: Slots): void {
    const { rho, eps, momentum: mu, weightDecay: wd } = this;
    const { squareAvg: sq, gradAvg: ga, momentum: buf } = s;
    for (let k = 0; k < p.length; k++) {
      const gk = wd === 0 ? g[k] : g[k] + wd * p[k];
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

/**
 * Adagrad (Duchi et al. 2011; torch.optim.Adagrad), per element, t counting the parameter's steps:
 *   g ← g + λ p,  sum ← sum + g²,  p ← p − lr / (1 + (t − 1)·lrDecay) · g / (√sum + ε).
 * Options (AdagradOptions and CommonOptions): learningRate 1e-2 (lr is an alias), lrDecay 0,
 * initialAccumulatorValue 0, eps 1e-10, weightDecay 0, clipNorm, clipValue, schedule.
 */
export class Adagrad extends BaseOptimizer {
  readonly className = 'Adagrad';
  readonly lrDecay: number;
  readonly initialAccumulatorValue: number;
  readonly eps: number;
  protected readonly slotNames: readonly string[] = ['sum'];
  constructor(options: AdagradOptions = {}) {
    super('Adagrad', options, ADAGRAD_OPTIONS, 1e-2, 0);
    this.lrDecay = checkNumber(options.lrDecay ?? 0, 'Adagrad: lrDecay', nonNegative, '[0, ∞)');
    this.initialAccumulatorValue = checkNumber(options.initialAccumulatorValue ?? 0, 'Adagrad: initialAccumulatorValue', nonNegative, '[0, ∞)');
    this.eps = checkNumber(options.eps ?? 1e-10, 'Adagrad: eps', nonNegative, '[0, ∞)');
  }
  getConfig(): { className: string; config: Record<string, unknown> } {
    return { className: 'Adagrad', config: { ...this.commonConfig(), lrDecay: this.lrDecay, initialAccumulatorValue: this.initialAccumulatorValue, eps: this.eps } };
  }
  protected override initialSlots(n: number): Slots {
    return { sum: new Float64Array(n).fill(this.initialAccumulatorValue) };
  }
  protected update(p: TensorData, g: TensorData, lr: number, s: Slots, t: number): void {
    const { lrDecay, eps, weightDecay: wd } = this;
    const clr = lr / (1 + (t - 1) * lrDecay);
    const sum = s.sum;
    for (let k = 0; k < p.length; k++) {
      const gk = wd === 0 ? g[k] : g[k] + wd * p[k];
      sum[k] += gk * gk;
      p[k] -= (clr * gk) / (Math.sqrt(sum[k]) + eps);
    }
  }
}

const OPTIMIZERS: Record<string, new (options: never) => Optimizer> = { SGD, Adam, AdamW, RMSprop, Adagrad };

/**
 * The optimizer a getConfig() result describes: { className: 'SGD' | 'Adam' | 'AdamW' | 'RMSprop' |
 * 'Adagrad', config } with the constructor's options; config.schedule may be a schedule's getConfig()
 * (turned back into it with scheduleFromConfig). An unknown className, or a config that is not an
 * object, is a TypeError; the options are checked as the constructor checks them. The result has no
 * state: restore that with setState.
 */
export function optimizerFromConfig(c: { className: string; config: Record<string, unknown> }): Optimizer {
  if (typeof c !== 'object' || c === null) throw new TypeError(`optimizerFromConfig: expected { className, config }, got ${show(c)}`);
  const Class = typeof c.className === 'string' && Object.hasOwn(OPTIMIZERS, c.className) ? OPTIMIZERS[c.className] : undefined;
  if (!Class) throw new TypeError(`optimizerFromConfig: className: unknown optimizer ${show(c.className)}; expected one of ${Object.keys(OPTIMIZERS).join(', ')}`);
  if (typeof c.config !== 'object' || c.config === null || Array.isArray(c.config)) {
    throw new TypeError(`optimizerFromConfig: config: expected an object, got ${show(c.config)}`);
  }
  const { schedule, ...rest } = c.config;
  const options =
    schedule === undefined || isSchedule(schedule) ? c.config : { ...rest, schedule: scheduleFromConfig(schedule as { className: string; config: Record<string, unknown> }) };
  return new Class(options as never);
}

/**
 * Scales all gradients in place by maxNorm / ‖g‖ when their global L2 norm ‖g‖ (over every element
 * of every tensor) exceeds maxNorm, and returns ‖g‖ as it was before clipping. A non-finite norm is
 * returned without touching the gradients, so the caller can skip that step. (PyTorch's
 * clip_grad_norm_ divides by ‖g‖ + 1e-6 instead; the optimizers' clipNorm option works like this.)
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
