// Streaming metrics over rows (accuracy, perplexity, bits per character, mean errors) for the losses
// of ./losses.ts: the same [rows, classes] predictions, targets and per-row weights (masks).
import { show } from '../options.js';
import type { Tensor } from '../tensor.js';
import { checkRowInputs, crossEntropyRow, getLoss, targetRow, type Loss, type LossConfig, type LossName, type RowCheck, type RowInputs } from './losses.js';

/** The metric names getMetric takes. */
export type MetricName =
  | 'accuracy'
  | 'sparseCategoricalAccuracy'
  | 'categoricalAccuracy'
  | 'binaryAccuracy'
  | 'perplexity'
  | 'bitsPerCharacter'
  | 'meanSquaredError'
  | 'meanAbsoluteError';

/** Every MetricName (the list error messages give). */
export const METRIC_NAMES: readonly MetricName[] = Object.freeze([
  'accuracy',
  'sparseCategoricalAccuracy',
  'categoricalAccuracy',
  'binaryAccuracy',
  'perplexity',
  'bitsPerCharacter',
  'meanSquaredError',
  'meanAbsoluteError',
] as MetricName[]);

/**
 * A streaming metric. update() adds one batch — pred [rows, classes], target and optional per-row
 * weights, exactly as Loss#compute takes them (rows with weight 0 are ignored) — to weighted sums
 * kept since the last reset(); result() is the metric over everything added since, so two updates
 * give what one update over the concatenated rows gives. An update whose inputs are invalid throws
 * (TypeError/RangeError naming the argument, as Loss#compute) and adds nothing.
 */
export interface Metric {
  /** The key of this metric in training logs/history: the MetricName it was made from (e.g. 'accuracy', 'perplexity'). */
  readonly name: string;
  /** Forgets every update. */
  reset(): void;
  /** Adds one batch of rows. */
  update(pred: Tensor, target: Int32Array | Tensor, weights?: Float64Array): void;
  /** The metric over every row added since the last reset (see each metric for its value with no rows). */
  result(): number;
}

type Kind = 'sparseAccuracy' | 'categoricalAccuracy' | 'binaryAccuracy' | 'perplexity' | 'bitsPerCharacter' | 'mse' | 'mae';

/** A weighted mean of per-row values Σ w_r·v_r / Σ w_r, optionally transformed at result(). */
class RowMetric implements Metric {
  readonly name: string;
  readonly #kind: Kind;
  readonly #check: RowCheck;
  readonly #fromLogits: boolean;
  #total = 0;
  #weight = 0;

  constructor(name: string, kind: Kind, check: RowCheck, fromLogits: boolean) {
    this.name = name;
    this.#kind = kind;
    this.#check = check;
    this.#fromLogits = fromLogits;
    Object.seal(this);
  }

  reset(): void {
    this.#total = 0;
    this.#weight = 0;
  }

  update(pred: Tensor, target: Int32Array | Tensor, weights?: Float64Array): void {
    const inp = checkRowInputs(`${this.name} metric`, this.#check, pred, target, weights);
    // Rows are added one by one into the running sums, so splitting a batch changes no rounding.
    const { rows, w } = inp;
    const t = this.#kind === 'perplexity' || this.#kind === 'bitsPerCharacter' ? new Float64Array(inp.cols) : undefined;
    for (let r = 0; r < rows; r++) {
      if (!(w[r] > 0)) continue;
      this.#total += w[r] * this.#rowValue(inp, r, t);
      this.#weight += w[r];
    }
  }

  #rowValue(inp: RowInputs, r: number, t: Float64Array | undefined): number {
    const { cols: C, p } = inp, o = r * C;
    switch (this.#kind) {
      case 'sparseAccuracy':
        return argmax(p, o, C) === inp.labels![r] ? 1 : 0;
      case 'categoricalAccuracy':
        return argmax(p, o, C) === argmax(inp.t!, o, C) ? 1 : 0;
      case 'binaryAccuracy': {
        const threshold = this.#fromLogits ? 0 : 0.5, d = inp.t!;
        let hits = 0;
        for (let c = 0; c < C; c++) if ((p[o + c] > threshold ? 1 : 0) === d[o + c]) hits++;
        return hits / C;
      }
      case 'perplexity':
      case 'bitsPerCharacter':
        targetRow(inp, r, 0, t!);
        return crossEntropyRow(inp, r, this.#fromLogits, t!);
      case 'mse':
      case 'mae': {
        const d = inp.t!;
        let sum = 0;
        for (let c = 0; c < C; c++) {
          const e = p[o + c] - d[o + c];
          sum += this.#kind === 'mse' ? e * e : Math.abs(e);
        }
        return sum / C;
      }
    }
  }

  result(): number {
    const mean = this.#weight > 0 ? this.#total / this.#weight : 0;
    if (this.#kind === 'perplexity') return Math.exp(mean);
    if (this.#kind === 'bitsPerCharacter') return mean / Math.LN2;
    return mean;
  }
}

/** The first index of the largest entry of data[o .. o + n) (NaN entries are skipped; 0 when all are NaN). */
function argmax(data: ArrayLike<number>, o: number, n: number): number {
  let best = 0, max = -Infinity;
  for (let c = 0; c < n; c++) {
    if (data[o + c] > max) {
      max = data[o + c];
      best = c;
    }
  }
  return best;
}

function isCategorical(name: LossName): boolean {
  return name === 'sparseCategoricalCrossentropy' || name === 'categoricalCrossentropy';
}

/**
 * The Metric for `spec` (a MetricName, or a Metric object returned as it is) given the training
 * `loss` (a Loss, or anything getLoss takes), which decides the target form and whether pred holds
 * logits. Every metric is a weighted mean over rows, Σ_r w_r·v_r / Σ_r w_r (0 with no rows):
 *  - 'accuracy' resolves by the loss, as Keras: sparseCategoricalCrossentropy → sparse categorical
 *    accuracy, categoricalCrossentropy → categorical accuracy, binaryCrossentropy → binary accuracy;
 *    with meanSquaredError/meanAbsoluteError it is a TypeError (name the accuracy you mean). The
 *    metric keeps the name 'accuracy'.
 *  - 'sparseCategoricalAccuracy': v_r = 1 when argmax(pred_r) equals the class id (Int32Array target), else 0.
 *  - 'categoricalAccuracy': v_r = 1 when argmax(pred_r) = argmax(target_r) (first index on ties), else 0.
 *  - 'binaryAccuracy': v_r = the fraction of the row's entries with (pred > threshold ? 1 : 0) equal to
 *    the target (exactly, as Keras), threshold 0.5 on probabilities or 0 on logits (loss.fromLogits).
 *  - 'perplexity' = exp(weighted mean cross-entropy) (1 with no rows) and 'bitsPerCharacter' =
 *    weighted mean cross-entropy / ln 2, the cross-entropy computed from pred as the loss would
 *    (see Loss: logits or probabilities per loss.fromLogits, probabilities normalised and clipped
 *    to [1e-7, 1 − 1e-7]) but without label smoothing. Targets are dense for
 *    categoricalCrossentropy; for any other loss, sparse (class ids), and pred are logits when
 *    loss.fromLogits.
 *  - 'meanSquaredError' / 'meanAbsoluteError': v_r = mean_j (pred − target)² / |pred − target| (dense targets).
 * An unknown name is a TypeError listing the valid ones.
 */
export function getMetric(spec: MetricName | Metric, loss: Loss | LossName | LossConfig): Metric {
  const what = 'getMetric';
  const l = getLoss(loss);
  if (typeof spec === 'object' && spec !== null && !Array.isArray(spec)) {
    const m = spec as Partial<Metric>;
    if (typeof m.name !== 'string' || typeof m.reset !== 'function' || typeof m.update !== 'function' || typeof m.result !== 'function') {
      throw new TypeError(`${what}: a Metric object needs a string name and reset, update and result methods`);
    }
    return spec;
  }
  if (typeof spec !== 'string' || !(METRIC_NAMES as readonly string[]).includes(spec)) {
    throw new TypeError(`${what}: unknown metric ${show(spec)}; valid names: ${METRIC_NAMES.join(', ')}`);
  }
  const sparse: RowCheck = { targetKind: 'sparse' };
  const dense: RowCheck = { targetKind: 'dense' };
  const name = spec as MetricName;
  switch (name) {
    case 'accuracy':
      switch (l.name) {
        case 'sparseCategoricalCrossentropy':
          return new RowMetric(name, 'sparseAccuracy', sparse, l.fromLogits);
        case 'categoricalCrossentropy':
          return new RowMetric(name, 'categoricalAccuracy', dense, l.fromLogits);
        case 'binaryCrossentropy':
          return new RowMetric(name, 'binaryAccuracy', dense, l.fromLogits);
        default:
          throw new TypeError(
            `${what}: 'accuracy' is not defined for the loss ${show(l.name)}; ask for 'binaryAccuracy' or 'categoricalAccuracy' (or 'sparseCategoricalAccuracy') explicitly`,
          );
      }
    case 'sparseCategoricalAccuracy':
      return new RowMetric(name, 'sparseAccuracy', sparse, l.fromLogits);
    case 'categoricalAccuracy':
      return new RowMetric(name, 'categoricalAccuracy', dense, l.fromLogits);
    case 'binaryAccuracy':
      return new RowMetric(name, 'binaryAccuracy', dense, l.fromLogits);
    case 'perplexity':
    case 'bitsPerCharacter': {
      const targetKind = l.name === 'categoricalCrossentropy' ? 'dense' : 'sparse';
      const check: RowCheck = {
        targetKind,
        targetValues: targetKind === 'dense' ? 'distribution' : 'any',
        predValues: l.fromLogits ? 'any' : 'probabilities',
      };
      return new RowMetric(name, name, check, l.fromLogits);
    }
    case 'meanSquaredError':
      return new RowMetric(name, 'mse', dense, false);
    case 'meanAbsoluteError':
      return new RowMetric(name, 'mae', dense, false);
  }
}

// Re-exported for callers that only import metrics.
export type { Loss, LossConfig, LossName };
