// Loss functions returning the scalar loss and its gradient with respect to the prediction.
import { checkOptions, flag, numberIn, show } from '../options.js';
import { bufferProblem, checkTensor, describeBufferProblem, elementCount, formatShape, Tensor, type TensorData } from '../tensor.js';

export interface LossResult {
  /** The mean loss. */
  loss: number;
  /** dLoss/dPrediction, same shape and dtype as the prediction. */
  grad: Tensor;
}

/**
 * Mean squared error over all elements: loss = Σ (pred − target)² / n, grad = 2 (pred − target) / n.
 * pred and target: the same shape (any rank, at least one element) and dtype.
 */
export function mseLoss(pred: Tensor, target: Tensor): LossResult {
  if (!Tensor.isTensor(pred)) throw new TypeError('mseLoss: pred must be a Tensor');
  const problem = elementCount(pred.data) === 0 ? bufferProblem(pred.data) : undefined;
  if (problem) throw new TypeError(`mseLoss: pred: ${describeBufferProblem(problem)}`);
  if (pred.size === 0) throw new RangeError(`mseLoss: pred must have at least one element, got shape ${formatShape(pred.shape)}`);
  checkTensor(target, 'mseLoss: target (same shape as pred)', pred.shape, pred.shape.map(() => ''), pred.dtype);
  const p = pred.data, t = target.data, n = p.length;
  const grad = Tensor.zeros(pred.shape, pred.dtype);
  const g = grad.data;
  let sum = 0;
  for (let k = 0; k < n; k++) {
    const e = p[k] - t[k];
    sum += e * e;
    g[k] = (2 * e) / n;
  }
  return { loss: sum / n, grad };
}

/**
 * Softmax followed by the negative log-likelihood of the labels, averaged over the batch:
 * loss = mean_b (logsumexp(logits_b) − logits_b[labels_b]), grad = (softmax(logits) − onehot(labels)) / batch.
 * logits: [batch, classes] with batch, classes >= 1; labels: batch integers in [0, classes).
 */
export function softmaxCrossEntropy(logits: Tensor, labels: Int32Array | readonly number[]): LossResult {
  const where = 'softmaxCrossEntropy';
  if (!Tensor.isTensor(logits)) throw new TypeError(`${where}: logits must be a Tensor of shape [batch, classes]`);
  if (logits.rank !== 2 || logits.shape[0] < 1 || logits.shape[1] < 1) {
    throw new RangeError(`${where}: logits must have shape [batch, classes] with batch, classes >= 1, got ${formatShape(logits.shape)}`);
  }
  const [batch, classes] = logits.shape as [number, number];
  checkTensor(logits, `${where}: logits`, [batch, classes], ['batch', 'classes'], logits.dtype);
  if (!(labels instanceof Int32Array) && !Array.isArray(labels)) {
    throw new TypeError(`${where}: labels must be an Int32Array or an array of numbers of length batch=${batch}`);
  }
  if (labels.length !== batch) {
    throw new RangeError(`${where}: labels must have length batch=${batch}, got ${show(labels.length)}`);
  }
  const checked = new Int32Array(batch);  // read once: what was checked is what is used
  for (let r = 0; r < batch; r++) {
    const c = labels[r];
    if (!Number.isInteger(c) || c < 0 || c >= classes) {
      throw new RangeError(`${where}: labels[${r}] must be an integer in [0, ${classes}), got ${show(c)}`);
    }
    checked[r] = c;
  }
  const z = logits.data;
  const grad = Tensor.zeros(logits.shape, logits.dtype);
  const g = grad.data;
  let total = 0;
  for (let r = 0; r < batch; r++) {
    const o = r * classes;
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, z[o + c]);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += Math.exp(z[o + c] - max);
    const label = checked[r];
    total += max + Math.log(sum) - z[o + label];
    for (let c = 0; c < classes; c++) g[o + c] = Math.exp(z[o + c] - max) / sum / batch;
    g[o + label] -= 1 / batch;
  }
  return { loss: total / batch, grad };
}

// ---------------------------------------------------------------------------------------------
// Configurable losses over rows, with fromLogits, label smoothing and per-row weights (masks)

/**
 * The loss names getLoss takes. 'mse' and 'mae' are aliases of 'meanSquaredError' and
 * 'meanAbsoluteError' (a loss's `name` is always the canonical one).
 */
export type LossName =
  | 'sparseCategoricalCrossentropy'
  | 'categoricalCrossentropy'
  | 'binaryCrossentropy'
  | 'meanSquaredError'
  | 'meanAbsoluteError'
  | 'mse'
  | 'mae';

/** Every LossName, canonical names first (the list error messages give). */
export const LOSS_NAMES: readonly LossName[] = Object.freeze([
  'sparseCategoricalCrossentropy',
  'categoricalCrossentropy',
  'binaryCrossentropy',
  'meanSquaredError',
  'meanAbsoluteError',
  'mse',
  'mae',
] as LossName[]);

/**
 * The clipping epsilon of the probability forms of the cross-entropies, Keras's backend epsilon 1e-7:
 * probabilities are clipped to [LOSS_EPSILON, 1 − LOSS_EPSILON] before their logarithm.
 */
export const LOSS_EPSILON = 1e-7;

/**
 * A loss as a plain object (what getConfig returns and getLoss takes).
 *  - name: a LossName.
 *  - fromLogits (cross-entropies only; default false, as in Keras): whether pred holds logits
 *    (unnormalised scores) rather than probabilities. meanSquaredError/meanAbsoluteError accept only
 *    false (or no value).
 *  - labelSmoothing (cross-entropies only; default 0; a number in [0, 1]): targets t become
 *    t·(1 − s) + s/classes (categorical and sparse) or t·(1 − s) + s/2 (binary), as in Keras.
 */
export interface LossConfig {
  name: LossName;
  fromLogits?: boolean;
  labelSmoothing?: number;
}

/** The canonical loss names (a Loss's `name`). */
type CanonicalLossName = Exclude<LossName, 'mse' | 'mae'>;

/**
 * A loss over rows: `pred` is a Tensor [rows, classes] (a sequence model flattens [batch, steps, C]
 * to [batch·steps, C]), `target` is either an Int32Array of `rows` class ids (targetKind 'sparse') or
 * a Tensor of pred's shape (targetKind 'dense', float32 or float64, either of pred's dtype or not),
 * and `weights`, when given, a Float64Array of `rows` finite non-negative per-row weights (0 = a
 * masked/padded step, else usually 1).
 *
 * compute() returns the weighted mean loss = Σ_r w_r·ℓ_r / Σ_r w_r (Keras's masked mean; every
 * w_r = 1 without weights), where ℓ_r is the loss of row r, and its exact gradient with respect to
 * pred (same shape and dtype as pred; rows with weight 0 get zero gradient). When Σ w = 0 (or
 * rows = 0) the loss is 0 and the gradient zero. Rows with weight 0 are not read beyond their shape:
 * their pred and target values (even NaN, or an out-of-range class id) change nothing. Everything is
 * computed in float64 and the gradient is rounded to pred's dtype at the end.
 *
 * Per-row losses ℓ_r (ε = LOSS_EPSILON = 1e-7; t = the smoothed targets):
 *  - sparseCategoricalCrossentropy / categoricalCrossentropy:
 *      fromLogits true: ℓ = Σ_c t_c·(logsumexp(z) − z_c) (a fused, stable log-softmax), gradient
 *        (Σ_c t_c)·softmax(z) − t.
 *      fromLogits false (Keras's default): as Keras, each row is first divided by its sum (u = p / S,
 *        S = Σ_c p_c), then clipped, q = clip(u, ε, 1 − ε), and ℓ = −Σ_c t_c·log q_c. The gradient is
 *        that of this piecewise function: clipped entries pass no gradient through their clip, so
 *        dℓ/dp_j = (Σ_{c unclipped} t_c − [j unclipped]·t_j / u_j) / S (when the target class is
 *        clipped, e.g. p_y ≈ 0 or ≈ 1, the whole row's gradient is 0). Probabilities must be
 *        non-negative with a positive row sum (a negative entry is a RangeError: did you mean
 *        fromLogits: true?); they need not sum to 1.
 *    Sparse targets are one-hot rows of the class ids; dense (categorical) targets must be finite and
 *    non-negative (soft targets need not sum to 1).
 *  - binaryCrossentropy: per element, averaged over the `classes` (k) columns of the row, as Keras:
 *      fromLogits true: max(z, 0) − z·t + log(1 + e^−|z|) (stable sigmoid cross-entropy), gradient
 *        (sigmoid(z) − t) / k.
 *      fromLogits false: q = clip(p, ε, 1 − ε), −t·log q − (1 − t)·log(1 − q), gradient
 *        (q − t) / (q(1 − q)) / k where p is inside the clip range and 0 outside. p must lie in
 *        [0, 1] (else a RangeError: did you mean fromLogits: true?).
 *    Targets must lie in [0, 1].
 *  - meanSquaredError: mean_j (p_j − t_j)², gradient 2(p − t) / k.
 *  - meanAbsoluteError: mean_j |p_j − t_j|, gradient sign(p − t) / k (0 where p = t).
 *
 * Errors: a TypeError for a wrong kind of argument (pred not a Tensor, a sparse loss given a Tensor
 * target or a dense one an Int32Array, weights not a Float64Array), a RangeError naming the argument
 * for a wrong shape or length, an out-of-range class id (`target[r]`), weight (`weights[r]`), target
 * or probability value (`target[r, c]`, `pred[r, c]`).
 */
export interface Loss {
  /** The canonical name ('mse' → 'meanSquaredError', 'mae' → 'meanAbsoluteError'). */
  readonly name: LossName;
  /** Whether pred holds logits (cross-entropies; default false); always false for mse/mae. */
  readonly fromLogits: boolean;
  /** Which target form compute takes: 'sparse' (an Int32Array of class ids, one per row) or 'dense' (a Tensor like pred). */
  readonly targetKind: 'sparse' | 'dense';
  /** The weighted mean loss over the rows of pred and its gradient (same shape and dtype as pred). */
  compute(pred: Tensor, target: Int32Array | Tensor, weights?: Float64Array): LossResult;
  /** The configuration getLoss rebuilds this loss from: { name, fromLogits, labelSmoothing } for cross-entropies, { name } otherwise. */
  getConfig(): LossConfig;
}

/** @internal How the inputs of a row loss or metric are checked (see checkRowInputs). */
export interface RowCheck {
  /** 'sparse': an Int32Array of class ids; 'dense': a Tensor of pred's shape. */
  targetKind: 'sparse' | 'dense';
  /** Checks on dense target values of weighted rows: 'distribution' (finite, >= 0), 'unit' (in [0, 1]), 'any'. */
  targetValues?: 'distribution' | 'unit' | 'any';
  /** Checks on pred values of weighted rows: 'probabilities' (>= 0, positive finite row sum), 'unit' (in [0, 1]), 'any'. */
  predValues?: 'probabilities' | 'unit' | 'any';
}

/** @internal Checked inputs of a row loss or metric: what was checked is what is used. */
export interface RowInputs {
  rows: number;
  cols: number;
  /** pred's data (a frozen Tensor's, not over a SharedArrayBuffer). */
  p: TensorData;
  /** The class ids (a checked copy) for sparse targets. */
  labels: Int32Array | undefined;
  /** The target data for dense targets. */
  t: TensorData | undefined;
  /** The weights (a checked copy; all 1 when none were given). */
  w: Float64Array;
  /** Σ_r w_r. */
  weightSum: number;
}

/**
 * @internal Checks pred [rows, classes], the target and the optional weights for `where` (e.g.
 * 'sparseCategoricalCrossentropy'), throwing a TypeError/RangeError that names the argument; see Loss.
 */
export function checkRowInputs(where: string, check: RowCheck, pred: unknown, target: unknown, weights: unknown): RowInputs {
  if (!Tensor.isTensor(pred)) throw new TypeError(`${where}: pred must be a Tensor of shape [rows, classes], got ${kindOf(pred)}`);
  if (pred.rank !== 2 || pred.shape[1] < 1) {
    throw new RangeError(`${where}: pred must have shape [rows, classes] with classes >= 1, got ${formatShape(pred.shape)}`);
  }
  const [rows, cols] = pred.shape as [number, number];
  checkTensor(pred, `${where}: pred`, [rows, cols], ['rows', 'classes'], pred.dtype);
  const p = pred.data;

  let w: Float64Array;
  if (weights === undefined) {
    w = new Float64Array(rows).fill(1);
  } else {
    if (!(weights instanceof Float64Array)) {
      throw new TypeError(`${where}: weights must be a Float64Array of length rows=${rows} (or undefined), got ${kindOf(weights)}`);
    }
    const n = elementCount(weights);
    if (n !== rows) {
      const problem = n === 0 ? bufferProblem(weights as unknown as TensorData) : undefined;
      if (problem) throw new TypeError(`${where}: weights: ${describeBufferProblem(problem)}`);
      throw new RangeError(`${where}: weights must have length rows=${rows}, got ${n}`);
    }
    w = weights.slice();  // a copy: what was checked is what is used
    for (let r = 0; r < rows; r++) {
      if (!(Number.isFinite(w[r]) && w[r] >= 0)) throw new RangeError(`${where}: weights[${r}] must be a finite number >= 0, got ${w[r]}`);
    }
  }
  let weightSum = 0;
  for (let r = 0; r < rows; r++) weightSum += w[r];
  if (!Number.isFinite(weightSum)) throw new RangeError(`${where}: weights sum to ${weightSum} (too large)`);

  let labels: Int32Array | undefined;
  let t: TensorData | undefined;
  if (check.targetKind === 'sparse') {
    if (!(target instanceof Int32Array)) {
      const hint = Tensor.isTensor(target) ? ' (a Tensor of targets like pred needs a dense loss, e.g. categoricalCrossentropy)' : '';
      throw new TypeError(`${where}: target must be an Int32Array of rows=${rows} class ids, got ${kindOf(target)}${hint}`);
    }
    const n = target.length;
    if (n !== rows) {
      const problem = n === 0 ? bufferProblem(target as unknown as TensorData) : undefined;
      if (problem) throw new TypeError(`${where}: target: ${describeBufferProblem(problem)}`);
      throw new RangeError(`${where}: target must have length rows=${rows} (one class id per row of pred), got ${n}`);
    }
    labels = target.slice();
    for (let r = 0; r < rows; r++) {
      const c = labels[r];
      if (w[r] > 0 && !(c >= 0 && c < cols)) throw new RangeError(`${where}: target[${r}] must be a class id in [0, ${cols}), got ${c}`);
    }
  } else {
    if (!Tensor.isTensor(target)) {
      const hint = target instanceof Int32Array ? ' (class ids need a sparse loss, e.g. sparseCategoricalCrossentropy)' : '';
      throw new TypeError(`${where}: target must be a Tensor of pred's shape ${formatShape(pred.shape)}, got ${kindOf(target)}${hint}`);
    }
    checkTensor(target, `${where}: target (same shape as pred)`, [rows, cols], ['rows', 'classes'], target.dtype);
    t = target.data;
    const values = check.targetValues ?? 'any';
    if (values !== 'any') {
      for (let r = 0; r < rows; r++) {
        if (!(w[r] > 0)) continue;
        for (let c = 0; c < cols; c++) {
          const v = t[r * cols + c];
          const ok = values === 'unit' ? v >= 0 && v <= 1 : Number.isFinite(v) && v >= 0;
          if (!ok) {
            throw new RangeError(`${where}: target[${r}, ${c}] must be ${values === 'unit' ? 'in [0, 1]' : 'a finite number >= 0'}, got ${v}`);
          }
        }
      }
    }
  }

  const predValues = check.predValues ?? 'any';
  if (predValues !== 'any') {
    const hint = '(pred are probabilities because fromLogits is false; pass fromLogits: true for logits)';
    for (let r = 0; r < rows; r++) {
      if (!(w[r] > 0)) continue;
      let sum = 0;
      for (let c = 0; c < cols; c++) {
        const v = p[r * cols + c];
        // NaN passes: a diverged model's NaN propagates to the loss rather than becoming an error.
        if (v < 0 || (predValues === 'unit' && v > 1)) {
          throw new RangeError(`${where}: pred[${r}, ${c}] must be ${predValues === 'unit' ? 'in [0, 1]' : '>= 0'}, got ${v} ${hint}`);
        }
        sum += v;
      }
      if (predValues === 'probabilities' && sum === 0) {
        throw new RangeError(`${where}: pred row ${r} sums to 0; probabilities need a positive row sum ${hint}`);
      }
    }
  }
  return { rows, cols, p, labels, t, w, weightSum };
}

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an Array';
  if (Tensor.isTensor(v)) return `a Tensor of shape ${formatShape(v.shape)}`;
  if (typeof v === 'object') {
    const name: unknown = (v as object).constructor?.name;
    return typeof name === 'string' && name !== '' ? `a ${name}` : 'an object';
  }
  return show(v);
}

/**
 * @internal Fills `t` (length classes) with the target distribution of row r: the one-hot row of
 * the class id (sparse) or the dense target row, smoothed by `smoothing` (t·(1 − s) + s/classes).
 */
export function targetRow(inp: RowInputs, r: number, smoothing: number, t: Float64Array): void {
  const C = inp.cols;
  if (inp.labels) {
    t.fill(smoothing / C);
    t[inp.labels[r]] += 1 - smoothing;
  } else {
    const d = inp.t!, o = r * C;
    if (smoothing === 0) for (let c = 0; c < C; c++) t[c] = d[o + c];
    else for (let c = 0; c < C; c++) t[c] = d[o + c] * (1 - smoothing) + smoothing / C;
  }
}

/**
 * @internal The cross-entropy of row r (pred logits or probabilities, see Loss) against the target
 * distribution `t`; when `g` is given, adds `scale`·dℓ/dpred_r into g at the row's offset.
 */
export function crossEntropyRow(inp: RowInputs, r: number, fromLogits: boolean, t: Float64Array, g?: TensorData, scale = 0): number {
  const C = inp.cols, p = inp.p, o = r * C;
  let loss = 0;
  if (fromLogits) {
    let max = -Infinity;
    for (let c = 0; c < C; c++) if (p[o + c] > max) max = p[o + c];
    if (max === -Infinity || Number.isNaN(max)) max = p[o];  // all −∞ (or NaN): let the arithmetic say so
    let sum = 0;
    for (let c = 0; c < C; c++) sum += Math.exp(p[o + c] - max);
    const lse = max + Math.log(sum);
    let mass = 0;
    for (let c = 0; c < C; c++) {
      if (t[c] !== 0) loss += t[c] * (lse - p[o + c]);
      mass += t[c];
    }
    if (g) for (let c = 0; c < C; c++) g[o + c] = scale * (mass * (Math.exp(p[o + c] - max) / sum) - t[c]);
  } else {
    let S = 0;
    for (let c = 0; c < C; c++) S += p[o + c];
    let unclippedMass = 0;
    for (let c = 0; c < C; c++) {
      const u = p[o + c] / S;
      const q = u < LOSS_EPSILON ? LOSS_EPSILON : u > 1 - LOSS_EPSILON ? 1 - LOSS_EPSILON : u;  // NaN stays NaN
      if (t[c] !== 0) loss -= t[c] * Math.log(q);
      if (!(u < LOSS_EPSILON || u > 1 - LOSS_EPSILON)) unclippedMass += t[c];
    }
    if (g) {
      for (let c = 0; c < C; c++) {
        const u = p[o + c] / S;
        const unclipped = !(u < LOSS_EPSILON || u > 1 - LOSS_EPSILON);
        g[o + c] = (scale * (unclippedMass - (unclipped && t[c] !== 0 ? t[c] / u : 0))) / S;
      }
    }
  }
  return loss;
}

/** The stable log(1 + e^x). */
function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

class RowLoss implements Loss {
  readonly name: CanonicalLossName;
  readonly fromLogits: boolean;
  readonly targetKind: 'sparse' | 'dense';
  readonly #labelSmoothing: number;
  readonly #check: RowCheck;

  constructor(name: CanonicalLossName, fromLogits: boolean, labelSmoothing: number) {
    this.name = name;
    this.fromLogits = fromLogits;
    this.#labelSmoothing = labelSmoothing;
    this.targetKind = name === 'sparseCategoricalCrossentropy' ? 'sparse' : 'dense';
    this.#check = {
      targetKind: this.targetKind,
      targetValues: name === 'categoricalCrossentropy' ? 'distribution' : name === 'binaryCrossentropy' ? 'unit' : 'any',
      predValues: fromLogits ? 'any'
        : name === 'binaryCrossentropy' ? 'unit'
        : name === 'sparseCategoricalCrossentropy' || name === 'categoricalCrossentropy' ? 'probabilities' : 'any',
    };
    Object.freeze(this);
  }

  compute(pred: Tensor, target: Int32Array | Tensor, weights?: Float64Array): LossResult {
    if (!(this instanceof RowLoss)) throw new TypeError('Loss#compute: this is not a loss made by getLoss (call it as loss.compute(...))');
    const inp = checkRowInputs(this.name, this.#check, pred, target, weights);
    const grad = Tensor.zeros(pred.shape, pred.dtype);
    const W = inp.weightSum;
    if (!(W > 0)) return { loss: 0, grad };
    const { rows, cols: C, p, w } = inp;
    const g = grad.data;
    const s = this.#labelSmoothing;
    let total = 0;
    const t = new Float64Array(C);
    for (let r = 0; r < rows; r++) {
      if (!(w[r] > 0)) continue;
      const scale = w[r] / W, o = r * C;
      let loss = 0;
      switch (this.name) {
        case 'sparseCategoricalCrossentropy':
        case 'categoricalCrossentropy':
          targetRow(inp, r, s, t);
          loss = crossEntropyRow(inp, r, this.fromLogits, t, g, scale);
          break;
        case 'binaryCrossentropy': {
          const d = inp.t!;
          for (let c = 0; c < C; c++) {
            const y = s === 0 ? d[o + c] : d[o + c] * (1 - s) + 0.5 * s;
            const z = p[o + c];
            if (this.fromLogits) {
              loss += Math.max(z, 0) - z * y + softplus(-Math.abs(z));
              g[o + c] = (scale * (sigmoid(z) - y)) / C;
            } else {
              const q = z < LOSS_EPSILON ? LOSS_EPSILON : z > 1 - LOSS_EPSILON ? 1 - LOSS_EPSILON : z;
              loss -= (y !== 0 ? y * Math.log(q) : 0) + (y !== 1 ? (1 - y) * Math.log(1 - q) : 0);
              g[o + c] = z < LOSS_EPSILON || z > 1 - LOSS_EPSILON ? 0 : (scale * ((q - y) / (q * (1 - q)))) / C;
            }
          }
          loss /= C;
          break;
        }
        case 'meanSquaredError': {
          const d = inp.t!;
          for (let c = 0; c < C; c++) {
            const e = p[o + c] - d[o + c];
            loss += e * e;
            g[o + c] = (scale * 2 * e) / C;
          }
          loss /= C;
          break;
        }
        case 'meanAbsoluteError': {
          const d = inp.t!;
          for (let c = 0; c < C; c++) {
            const e = p[o + c] - d[o + c];
            loss += Math.abs(e);
            g[o + c] = (scale * (e > 0 ? 1 : e < 0 ? -1 : e)) / C;  // sign; 0 at 0, NaN stays NaN
          }
          loss /= C;
          break;
        }
      }
      total += w[r] * loss;
    }
    return { loss: total / W, grad };
  }

  getConfig(): LossConfig {
    if (!(this instanceof RowLoss)) throw new TypeError('Loss#getConfig: this is not a loss made by getLoss');
    return this.name !== 'meanSquaredError' && this.name !== 'meanAbsoluteError'
      ? { name: this.name, fromLogits: this.fromLogits, labelSmoothing: this.#labelSmoothing }
      : { name: this.name };
  }
}

const CROSS_ENTROPY_OPTIONS = Object.freeze(['name', 'fromLogits', 'labelSmoothing']);
const REGRESSION_OPTIONS = Object.freeze(['name', 'fromLogits']);

function canonicalLossName(v: unknown, what: string): CanonicalLossName {
  if (typeof v !== 'string' || !(LOSS_NAMES as readonly string[]).includes(v)) {
    throw new TypeError(`${what}: unknown loss ${show(v)}; valid names: ${LOSS_NAMES.join(', ')}`);
  }
  return v === 'mse' ? 'meanSquaredError' : v === 'mae' ? 'meanAbsoluteError' : (v as CanonicalLossName);
}

/**
 * The Loss for `spec`:
 *  - a LossName ('sparseCategoricalCrossentropy', 'categoricalCrossentropy', 'binaryCrossentropy',
 *    'meanSquaredError' or its alias 'mse', 'meanAbsoluteError' or its alias 'mae'), with the
 *    defaults fromLogits: false (Keras's default: pred are probabilities) and labelSmoothing: 0;
 *  - a LossConfig { name, fromLogits?, labelSmoothing? } (what Loss#getConfig returns);
 *    meanSquaredError/meanAbsoluteError take neither option (fromLogits: false is accepted);
 *  - a Loss (any object with a compute method), returned as it is.
 * See Loss for the formulas, the weighting and the errors of compute. An unknown name or option is a
 * TypeError naming it and listing the valid ones; a labelSmoothing outside [0, 1] a RangeError.
 */
export function getLoss(spec: LossName | LossConfig | Loss): Loss {
  const what = 'getLoss';
  if (typeof spec === 'string') return new RowLoss(canonicalLossName(spec, what), false, 0);
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
    throw new TypeError(`${what}: expected a loss name (${LOSS_NAMES.join(', ')}), a { name, fromLogits?, labelSmoothing? } object or a Loss, got ${show(spec)}`);
  }
  if (typeof (spec as Partial<Loss>).compute === 'function') {
    const loss = spec as Loss;
    if (loss.targetKind !== 'sparse' && loss.targetKind !== 'dense') {
      throw new TypeError(`${what}: a Loss object must have targetKind 'sparse' or 'dense', got ${show(loss.targetKind)}`);
    }
    if (typeof loss.fromLogits !== 'boolean') throw new TypeError(`${what}: a Loss object must have a boolean fromLogits, got ${show(loss.fromLogits)}`);
    if (typeof loss.name !== 'string') throw new TypeError(`${what}: a Loss object must have a string name, got ${show(loss.name)}`);
    return loss;
  }
  const config = spec as LossConfig;
  const name = canonicalLossName(config.name, `${what}: loss.name`);
  const crossEntropy = name === 'sparseCategoricalCrossentropy' || name === 'categoricalCrossentropy' || name === 'binaryCrossentropy';
  checkOptions(config, `${what}: loss`, crossEntropy ? CROSS_ENTROPY_OPTIONS : REGRESSION_OPTIONS, name);
  const fromLogits = flag(config.fromLogits, `${what}: loss.fromLogits`, false);
  if (!crossEntropy && fromLogits) {
    throw new TypeError(`${what}: loss.fromLogits: ${name} compares pred with target directly and takes no fromLogits (only false)`);
  }
  const labelSmoothing = config.labelSmoothing === undefined ? 0 : numberIn(config.labelSmoothing, `${what}: loss.labelSmoothing`, 0, 1);
  return new RowLoss(name, fromLogits, labelSmoothing);
}
