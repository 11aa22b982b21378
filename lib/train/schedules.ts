// Learning-rate schedules: pure functions of (base rate, optimizer step) that an optimizer's
// `schedule` option applies on every step. They keep no state of their own, so an optimizer restored
// with setState (iterations included) continues its schedule exactly.
import { checkOptions, optionNames, show } from '../options.js';

/**
 * A learning-rate schedule. `at(base, iteration)` is the rate of optimizer step `iteration` (0-based:
 * the optimizer's `iterations` before that step) given the optimizer's base rate `base` (its
 * `learningRate`, which ReduceLROnPlateau may lower). getConfig() is JSON-safe and recreates the
 * schedule with scheduleFromConfig.
 */
export interface LearningRateSchedule {
  /** 'StepDecay', 'ExponentialDecay' or 'CosineDecay' for the built-in schedules. */
  readonly className: string;
  /** The rate at optimizer step `iteration` (0-based) from the base rate `base`. */
  at(base: number, iteration: number): number;
  /** JSON-safe options (defaults filled in) that recreate it with scheduleFromConfig. */
  getConfig(): { className: string; config: Record<string, unknown> };
}

/** Options of stepDecay. */
export interface StepDecayOptions {
  /** Steps between two decays: a positive integer (required). */
  stepSize: number;
  /** Factor applied every stepSize steps, in (0, ∞) (default 0.1). */
  gamma?: number;
}

/** Options of exponentialDecay. */
export interface ExponentialDecayOptions {
  /** Factor applied every decaySteps steps (continuously in between), in (0, ∞) (required). */
  gamma: number;
  /** Steps over which the rate is multiplied by gamma, in (0, ∞) (default 1: gamma per step). */
  decaySteps?: number;
}

/** Options of cosineDecay. */
export interface CosineDecayOptions {
  /** The step at which the rate reaches minLearningRate (warm-up included): a positive integer (required). */
  totalSteps: number;
  /** Steps of linear warm-up before the cosine, an integer in [0, totalSteps) (default 0). */
  warmupSteps?: number;
  /** The rate at and after totalSteps, in [0, ∞) (default 0). */
  minLearningRate?: number;
}

const STEP_OPTIONS = optionNames<StepDecayOptions>({ stepSize: true, gamma: true });
const EXPONENTIAL_OPTIONS = optionNames<ExponentialDecayOptions>({ gamma: true, decaySteps: true });
const COSINE_OPTIONS = optionNames<CosineDecayOptions>({ totalSteps: true, warmupSteps: true, minLearningRate: true });

/** v when it is a finite number > 0 (`positive`) or ≥ 0; otherwise a RangeError naming `what`. */
function rate(v: unknown, what: string, positive: boolean): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || (positive ? !(v > 0) : !(v >= 0))) {
    throw new RangeError(`${what}: expected a number in ${positive ? '(0, ∞)' : '[0, ∞)'}, got ${show(v)}`);
  }
  return v;
}

/** v when it is a safe integer ≥ min; otherwise a RangeError naming `what`. */
function integer(v: unknown, what: string, min: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw new RangeError(`${what}: expected an integer ≥ ${min}, got ${show(v)}`);
  }
  return v;
}

function checkAt(className: string, base: number, iteration: number): void {
  if (typeof base !== 'number' || !Number.isFinite(base) || base < 0) {
    throw new RangeError(`${className}.at: base: expected a number in [0, ∞), got ${show(base)}`);
  }
  if (typeof iteration !== 'number' || !Number.isSafeInteger(iteration) || iteration < 0) {
    throw new RangeError(`${className}.at: iteration: expected an integer ≥ 0, got ${show(iteration)}`);
  }
}

function options<T>(o: T, where: string, names: readonly string[]): T {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new TypeError(`${where}: options: expected an object, got ${show(o)}`);
  return checkOptions(o, `${where}: options`, names);
}

/**
 * Step decay (PyTorch StepLR): base · gamma^floor(iteration / stepSize). Options: stepSize (required,
 * a positive integer), gamma (default 0.1). className 'StepDecay'.
 */
export function stepDecay(o: StepDecayOptions): LearningRateSchedule {
  options(o, 'stepDecay', STEP_OPTIONS);
  const stepSize = integer(o.stepSize, 'stepDecay: stepSize', 1);
  const gamma = rate(o.gamma ?? 0.1, 'stepDecay: gamma', true);
  return Object.freeze({
    className: 'StepDecay',
    at(base: number, iteration: number): number {
      checkAt('StepDecay', base, iteration);
      return base * gamma ** Math.floor(iteration / stepSize);
    },
    getConfig: () => ({ className: 'StepDecay', config: { stepSize, gamma } }),
  });
}

/**
 * Exponential decay (Keras ExponentialDecay, not staircased; PyTorch ExponentialLR when decaySteps is
 * 1): base · gamma^(iteration / decaySteps). Options: gamma (required), decaySteps (default 1).
 * className 'ExponentialDecay'.
 */
export function exponentialDecay(o: ExponentialDecayOptions): LearningRateSchedule {
  options(o, 'exponentialDecay', EXPONENTIAL_OPTIONS);
  const gamma = rate(o.gamma, 'exponentialDecay: gamma', true);
  const decaySteps = rate(o.decaySteps ?? 1, 'exponentialDecay: decaySteps', true);
  return Object.freeze({
    className: 'ExponentialDecay',
    at(base: number, iteration: number): number {
      checkAt('ExponentialDecay', base, iteration);
      return base * gamma ** (iteration / decaySteps);
    },
    getConfig: () => ({ className: 'ExponentialDecay', config: { gamma, decaySteps } }),
  });
}

/**
 * Cosine decay with optional linear warm-up. With W = warmupSteps, T = totalSteps, m = minLearningRate:
 *   iteration < W:       base · (iteration + 1) / W        (reaches base on the last warm-up step)
 *   W ≤ iteration < T:   m + (base − m) · (1 + cos(π (iteration − W) / (T − W))) / 2
 *   iteration ≥ T:       m
 * (with W = 0, PyTorch CosineAnnealingLR(T_max = T, eta_min = m) for the first T steps). Options:
 * totalSteps (required, a positive integer), warmupSteps (default 0, below totalSteps),
 * minLearningRate (default 0). className 'CosineDecay'.
 */
export function cosineDecay(o: CosineDecayOptions): LearningRateSchedule {
  options(o, 'cosineDecay', COSINE_OPTIONS);
  const totalSteps = integer(o.totalSteps, 'cosineDecay: totalSteps', 1);
  const warmupSteps = integer(o.warmupSteps ?? 0, 'cosineDecay: warmupSteps', 0);
  if (warmupSteps >= totalSteps) {
    throw new RangeError(`cosineDecay: warmupSteps: expected an integer below totalSteps (${totalSteps}), got ${warmupSteps}`);
  }
  const minLearningRate = rate(o.minLearningRate ?? 0, 'cosineDecay: minLearningRate', false);
  return Object.freeze({
    className: 'CosineDecay',
    at(base: number, iteration: number): number {
      checkAt('CosineDecay', base, iteration);
      if (iteration < warmupSteps) return (base / warmupSteps) * (iteration + 1);
      if (iteration >= totalSteps) return minLearningRate;
      const progress = (iteration - warmupSteps) / (totalSteps - warmupSteps);
      return minLearningRate + ((base - minLearningRate) * (1 + Math.cos(Math.PI * progress))) / 2;
    },
    getConfig: () => ({ className: 'CosineDecay', config: { totalSteps, warmupSteps, minLearningRate } }),
  });
}

const FACTORIES: Record<string, (config: never) => LearningRateSchedule> = {
  StepDecay: stepDecay,
  ExponentialDecay: exponentialDecay,
  CosineDecay: cosineDecay,
};

/**
 * The schedule a getConfig() result describes: { className: 'StepDecay' | 'ExponentialDecay' |
 * 'CosineDecay', config }. An unknown className, or a config that is not an object, is a TypeError;
 * the config's options are checked as the factory checks them.
 */
export function scheduleFromConfig(c: { className: string; config: Record<string, unknown> }): LearningRateSchedule {
  if (typeof c !== 'object' || c === null) throw new TypeError(`scheduleFromConfig: expected { className, config }, got ${show(c)}`);
  const factory = Object.hasOwn(FACTORIES, c.className) ? FACTORIES[c.className] : undefined;
  if (!factory) {
    throw new TypeError(`scheduleFromConfig: className: unknown schedule ${show(c.className)}; expected one of ${Object.keys(FACTORIES).join(', ')}`);
  }
  if (typeof c.config !== 'object' || c.config === null || Array.isArray(c.config)) {
    throw new TypeError(`scheduleFromConfig: config: expected an object, got ${show(c.config)}`);
  }
  return factory(c.config as never);
}

