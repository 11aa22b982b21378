// Sampling the next token from a model's output row: temperature and top-k, seeded.
import { checkOptions, numberIn, optionNames, show } from '../options.js';
import { Random } from '../init.js';

export interface SampleOptions {
  /** Divides the logits (or the log-probabilities): < 1 sharper, > 1 flatter; 0 takes the most likely (default 1). */
  temperature?: number;
  /** Sample among the k most likely only (default 0: all). */
  topK?: number;
  /** Whether the row holds logits (default) or probabilities (a softmax output). */
  fromLogits?: boolean;
  /** The generator to draw from (seeded: new Random(seed)); default a fresh unseeded one. */
  random?: Random;
}
const SAMPLE_OPTIONS = optionNames<SampleOptions>({ temperature: true, topK: true, fromLogits: true, random: true });

/** Draws an index from one row of logits or probabilities. */
export function sample(row: ArrayLike<number>, options: SampleOptions = {}): number {
  checkOptions(options, 'sample: options', SAMPLE_OPTIONS);
  if (row === null || typeof row !== 'object' || typeof row.length !== 'number' || row.length < 1) throw new TypeError(`sample: row must be a non-empty array of numbers, got ${show(row)}`);
  const temperature = options.temperature === undefined ? 1 : numberIn(options.temperature, 'sample: options.temperature', 0, 1e6);
  const k = options.topK ?? 0;
  if (!Number.isSafeInteger(k) || k < 0) throw new RangeError(`sample: options.topK: expected a non-negative integer, got ${show(options.topK)}`);
  const fromLogits = options.fromLogits ?? true;
  const n = row.length;
  const logits = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const v = Number(row[i]);
    if (Number.isNaN(v)) throw new RangeError(`sample: row[${i}] is NaN`);
    logits[i] = fromLogits ? v : Math.log(Math.max(v, 0));
  }
  let order = Array.from({ length: n }, (_, i) => i);
  if (temperature === 0) return order.reduce((best, i) => (logits[i] > logits[best] ? i : best), 0);
  if (k > 0 && k < n) order = order.sort((a, b) => logits[b] - logits[a]).slice(0, k);
  let max = -Infinity;
  for (const i of order) max = Math.max(max, logits[i]);
  const weights = order.map((i) => Math.exp((logits[i] - max) / temperature));
  const total = weights.reduce((a, b) => a + b, 0);
  let u = (options.random ?? new Random()).next() * total;
  for (let j = 0; j < order.length; j++) {
    u -= weights[j];
    if (u <= 0) return order[j];
  }
  return order[order.length - 1];
}
