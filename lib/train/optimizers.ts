// First-order optimizers updating parameter Tensors in place, and global gradient-norm clipping.
// Per-parameter state (moments, momentum) is keyed by the parameter Tensor itself (a WeakMap), so
// the record keys only pair parameters with their gradients and may differ from call to call.
import { checkOptions, optionNames, show } from '../options.js';
import { parameterChanged } from '../params.js';
import { bufferProblem, checkTensor, describeBufferProblem, elementCount, shapeSize, Tensor } from '../tensor.js';

/** Throws a TypeError naming `what` when t's memory is gone (a detached or out-of-bounds buffer). */
function checkUsable(t: Tensor, what: string): void {
  if (elementCount(t.data) > 0 || shapeSize(t.shape) === 0) return;
  const problem = bufferProblem(t.data);
  if (problem) throw new TypeError(`${what}: ${describeBufferProblem(problem)}`);
}

export interface Optimizer {
  /**
   * Updates every params[k] in place from grads[k]. Both records must have the same keys, and each
   * gradient the shape of its parameter (any float dtype); nothing is changed if a check fails.
   */
  step(params: Record<string, Tensor>, grads: Record<string, Tensor>): void;
}

export interface AdamOptions {
  /** Step size (default 1e-3). */
  lr?: number;
  /** Decay of the first-moment average, in [0, 1) (default 0.9). */
  beta1?: number;
  /** Decay of the second-moment average, in [0, 1) (default 0.999). */
  beta2?: number;
  /** Added to √v̂ in the denominator (default 1e-8). */
  eps?: number;
}

export interface SGDOptions {
  /** Step size (required). */
  lr: number;
  /** Momentum factor, in [0, 1) (default 0: plain gradient descent). */
  momentum?: number;
}

/** Returns v when it is a finite number satisfying `ok`; otherwise a RangeError quoting `range`. */
function checkNumber(v: unknown, what: string, ok: (x: number) => boolean, range: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) {
    throw new RangeError(`${what}: expected a number in ${range}, got ${show(v)}`);
  }
  return v;
}

const ADAM_OPTIONS = optionNames<AdamOptions>({ lr: true, beta1: true, beta2: true, eps: true });
const SGD_OPTIONS = optionNames<SGDOptions>({ lr: true, momentum: true });

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

/**
 * Adam (Kingma & Ba 2015) with bias correction, in PyTorch's arrangement:
 *   m ← β₁ m + (1 − β₁) g,  v ← β₂ v + (1 − β₂) g²,
 *   p ← p − lr / (1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε),
 * t counting the steps taken by that parameter. Moments are kept in float64.
 */
export class Adam implements Optimizer {
  /** Step size; may be changed between steps (e.g. for a schedule). */
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  private readonly state = new WeakMap<Tensor, { m: Float64Array; v: Float64Array; t: number }>();

  constructor(options: AdamOptions = {}) {
    const { lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8 } = checkOptions(options, 'Adam: options', ADAM_OPTIONS);
    this.lr = checkNumber(lr, 'Adam: lr', positive, '(0, ∞)');
    this.beta1 = checkNumber(beta1, 'Adam: beta1', belowOne, '[0, 1)');
    this.beta2 = checkNumber(beta2, 'Adam: beta2', belowOne, '[0, 1)');
    this.eps = checkNumber(eps, 'Adam: eps', nonNegative, '[0, ∞)');
  }

  step(params: Record<string, Tensor>, grads: Record<string, Tensor>): void {
    const { beta1, beta2, eps, lr } = this;
    for (const [param, grad] of pairUp('Adam.step', params, grads)) {
      let s = this.state.get(param);
      if (!s) this.state.set(param, (s = { m: new Float64Array(param.size), v: new Float64Array(param.size), t: 0 }));
      const t = ++s.t;
      const stepSize = lr / (1 - beta1 ** t);
      const sqrtBc2 = Math.sqrt(1 - beta2 ** t);
      const { m, v } = s;
      const p = param.data, g = grad.data;
      for (let k = 0; k < p.length; k++) {
        const gk = g[k];
        m[k] = beta1 * m[k] + (1 - beta1) * gk;
        v[k] = beta2 * v[k] + (1 - beta2) * gk * gk;
        p[k] -= (stepSize * m[k]) / (Math.sqrt(v[k]) / sqrtBc2 + eps);
      }
      parameterChanged(param);
    }
  }
}

/**
 * Stochastic gradient descent with optional heavy-ball momentum, in PyTorch's arrangement:
 *   b ← μ b + g (b = g on a parameter's first step),  p ← p − lr b.
 */
export class SGD implements Optimizer {
  /** Step size; may be changed between steps (e.g. for a schedule). */
  lr: number;
  readonly momentum: number;
  private readonly buffers = new WeakMap<Tensor, Float64Array>();

  constructor(options: SGDOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('SGD: options must be an object with lr');
    checkOptions(options, 'SGD: options', SGD_OPTIONS);
    this.lr = checkNumber(options.lr, 'SGD: lr', positive, '(0, ∞)');
    this.momentum = checkNumber(options.momentum ?? 0, 'SGD: momentum', belowOne, '[0, 1)');
  }

  step(params: Record<string, Tensor>, grads: Record<string, Tensor>): void {
    const { lr, momentum } = this;
    for (const [param, grad] of pairUp('SGD.step', params, grads)) {
      const p = param.data, g = grad.data;
      if (momentum === 0) {
        for (let k = 0; k < p.length; k++) p[k] -= lr * g[k];
        parameterChanged(param);
        continue;
      }
      let b = this.buffers.get(param);
      if (!b) {
        this.buffers.set(param, (b = Float64Array.from(g)));
      } else {
        for (let k = 0; k < b.length; k++) b[k] = momentum * b[k] + g[k];
      }
      for (let k = 0; k < p.length; k++) p[k] -= lr * b[k];
      parameterChanged(param);
    }
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
