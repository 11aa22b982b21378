// The lab's synthetic tasks (no download) and the character-level language model on the demo's text.
// Each task makes training batches from a seeded generator and a fixed held-out set, and scores
// predictions with its own metric.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { Random } from '../init.js';
import { Tensor } from '../tensor.js';

export interface Batch {
  /** [batch, steps, inputSize] float32. */
  x: Tensor;
  /** mse: [batch, outputs] targets; ce: class ids, one per scored row. */
  y: Tensor | Int32Array;
  /** ce with per-step outputs: a weight per [batch·steps] row (0 = not scored); absent = all rows. */
  weights?: Float64Array;
}

export interface Task {
  readonly name: string;
  readonly inputSize: number;
  /** Outputs per scored step (classes for ce). */
  readonly outputSize: number;
  /** The head reads every step (returnSequences) or the last one. */
  readonly perStep: boolean;
  readonly loss: 'mse' | 'ce';
  /** The metric's name, its trivial baseline, and whether lower is better. */
  readonly metric: string;
  readonly baseline: number;
  readonly lowerIsBetter: boolean;
  /** A run counts as solved once the held-out metric is this good. */
  readonly solvedAt: number;
  /** The state carries over between batches (continual task, no resets). */
  readonly continual: boolean;
  train(rng: Random, batch: number): Batch;
  /** The held-out set (made once, from its own generator). */
  readonly test: Batch;
  /** The held-out metric from the head's outputs on `test` (logits for ce). */
  score(pred: Tensor): number;
  /** Sequence length used (for reports). */
  readonly steps: number;
}

function oneHot(ids: ArrayLike<number>, classes: number, shape: [number, number]): Tensor {
  const x = new Float32Array(ids.length * classes);
  for (let k = 0; k < ids.length; k++) x[k * classes + ids[k]] = 1;
  return Tensor.from(x, [shape[0], shape[1], classes]);
}

/** Accuracy of the argmax of logits [rows, C] on the weighted rows. */
function accuracy(pred: Tensor, y: Int32Array, weights?: Float64Array): number {
  const C = pred.shape[pred.rank - 1];
  let right = 0, total = 0;
  for (let r = 0; r < y.length; r++) {
    if (weights && weights[r] === 0) continue;
    let best = 0;
    for (let c = 1; c < C; c++) if (pred.data[r * C + c] > pred.data[r * C + best]) best = c;
    total++;
    if (best === y[r]) right++;
  }
  return right / total;
}

/** Mean cross-entropy in bits of logits [rows, C] on the weighted rows. */
export function bitsPerSymbol(pred: Tensor, y: Int32Array, weights?: Float64Array): number {
  const C = pred.shape[pred.rank - 1];
  let sum = 0, total = 0;
  for (let r = 0; r < y.length; r++) {
    if (weights && weights[r] === 0) continue;
    let m = -Infinity;
    for (let c = 0; c < C; c++) m = Math.max(m, pred.data[r * C + c]);
    let z = 0;
    for (let c = 0; c < C; c++) z += Math.exp(pred.data[r * C + c] - m);
    sum += (Math.log(z) + m - pred.data[r * C + y[r]]) / Math.LN2;
    total++;
  }
  return sum / total;
}

// ---------------------------------------------------------------------------------------------
// The adding problem (Hochreiter & Schmidhuber 1997): predicting 1 scores MSE 1/6 ≈ 0.167.

export function addingBatch(rng: Random, batch: number, steps: number): Batch {
  const x = new Float32Array(batch * steps * 2), y = new Float32Array(batch);
  const half = Math.floor(steps / 2);
  for (let b = 0; b < batch; b++) {
    const o = b * steps * 2;
    for (let t = 0; t < steps; t++) x[o + 2 * t] = rng.next();
    const first = rng.int(half), second = half + rng.int(steps - half);
    x[o + 2 * first + 1] = 1;
    x[o + 2 * second + 1] = 1;
    y[b] = x[o + 2 * first] + x[o + 2 * second];
  }
  return { x: Tensor.from(x, [batch, steps, 2]), y: Tensor.from(y, [batch, 1]) };
}

export const ADDING_BASELINE = 1 / 6;

export function addingTask(steps: number, testSize: number, seed: number): Task {
  const test = addingBatch(new Random((seed ^ 0x9e3779b9) >>> 0), testSize, steps);
  return {
    name: `adding T=${steps}`, inputSize: 2, outputSize: 1, perStep: false, loss: 'mse', continual: false, steps,
    metric: 'MSE', baseline: ADDING_BASELINE, lowerIsBetter: true, solvedAt: ADDING_BASELINE / 5,
    train: (rng, batch) => addingBatch(rng, batch, steps),
    test,
    score(pred) {
      const y = (test.y as Tensor).data;
      let s = 0;
      for (let k = 0; k < y.length; k++) s += (pred.data[k] - y[k]) ** 2;
      return s / y.length;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Copy / delay (Hochreiter & Schmidhuber 1997; Arjovsky et al. 2016): K symbols of 8, `delay`
// blanks, a go marker, then the K symbols must be written out. Scored: the K recall steps.

export const COPY_SYMBOLS = 8;

export function copyBatch(rng: Random, batch: number, length: number, delay: number): Batch {
  const V = COPY_SYMBOLS + 2, blank = COPY_SYMBOLS, go = COPY_SYMBOLS + 1;
  const T = 2 * length + delay + 1;
  const ids = new Int32Array(batch * T).fill(blank), y = new Int32Array(batch * T).fill(blank), w = new Float64Array(batch * T);
  for (let b = 0; b < batch; b++) {
    for (let k = 0; k < length; k++) {
      const s = rng.int(COPY_SYMBOLS);
      ids[b * T + k] = s;
      const at = b * T + length + delay + 1 + k;
      y[at] = s;
      w[at] = 1;
    }
    ids[b * T + length + delay] = go;
  }
  return { x: oneHot(ids, V, [batch, T]), y, weights: w };
}

export function copyTask(length: number, delay: number, testSize: number, seed: number): Task {
  const test = copyBatch(new Random((seed ^ 0x85ebca6b) >>> 0), testSize, length, delay);
  return {
    name: `copy K=${length} delay=${delay}`, inputSize: COPY_SYMBOLS + 2, outputSize: COPY_SYMBOLS + 1, perStep: true, loss: 'ce', continual: false,
    steps: 2 * length + delay + 1, metric: 'recall accuracy', baseline: 1 / COPY_SYMBOLS, lowerIsBetter: false, solvedAt: 0.95,
    train: (rng, batch) => copyBatch(rng, batch, length, delay),
    test,
    score: (pred) => accuracy(pred, test.y as Int32Array, test.weights),
  };
}

// ---------------------------------------------------------------------------------------------
// Long-dependency classification (Bengio et al. 1994's latch): the class (one of 4) is the first
// symbol; T − 1 distractor symbols follow; the class is asked at the end. Chance: 0.25.

export const CLASSES = 4;

export function latchBatch(rng: Random, batch: number, steps: number): Batch {
  const V = 2 * CLASSES;
  const ids = new Int32Array(batch * steps), y = new Int32Array(batch);
  for (let b = 0; b < batch; b++) {
    const c = rng.int(CLASSES);
    y[b] = c;
    ids[b * steps] = c;
    for (let t = 1; t < steps; t++) ids[b * steps + t] = CLASSES + rng.int(CLASSES);
  }
  return { x: oneHot(ids, V, [batch, steps]), y };
}

export function latchTask(steps: number, testSize: number, seed: number): Task {
  const test = latchBatch(new Random((seed ^ 0xc2b2ae35) >>> 0), testSize, steps);
  return {
    name: `latch T=${steps}`, inputSize: 2 * CLASSES, outputSize: CLASSES, perStep: false, loss: 'ce', continual: false, steps,
    metric: 'accuracy', baseline: 1 / CLASSES, lowerIsBetter: false, solvedAt: 0.95,
    train: (rng, batch) => latchBatch(rng, batch, steps),
    test,
    score: (pred) => accuracy(pred, test.y as Int32Array),
  };
}

// ---------------------------------------------------------------------------------------------
// Continual embedded Reber grammar (Gers, Schmidhuber & Cummins 2000): embedded Reber strings one
// after another with no marker between them and no state reset. The symbol before each string's
// last E repeats the string's second symbol, many steps back. The metric is the fraction of test
// strings whose every next symbol is predicted legally (the argmax is one of the allowed symbols);
// a network that learns the grammar but not the long dependency gets about half of them.

export const REBER = ['B', 'T', 'P', 'S', 'X', 'V', 'E'] as const;
const [B_, T_, P_, S_, X_, V_, E_] = [0, 1, 2, 3, 4, 5, 6];
/** Reber graph: node → [symbol, next node] choices (node 6 ends with E). */
const GRAPH: [number, number][][] = [
  [[B_, 1]], [[T_, 2], [P_, 3]], [[S_, 2], [X_, 4]], [[T_, 3], [V_, 5]], [[X_, 3], [S_, 6]], [[P_, 4], [V_, 6]], [[E_, -1]],
];

/** One embedded Reber string: symbols and, for each, the set (bitmask) of symbols allowed next. */
function embeddedReber(rng: Random): { symbols: number[]; allowed: number[] } {
  const symbols: number[] = [], allowed: number[] = [];
  const push = (s: number, next: number): void => {
    symbols.push(s);
    allowed.push(next);
  };
  const outer = rng.next() < 0.5 ? T_ : P_;
  push(B_, (1 << T_) | (1 << P_));
  push(outer, 1 << B_);
  let node = 0;
  while (node !== -1) {
    const choices = GRAPH[node];
    const [s, nx] = choices.length === 1 ? choices[0] : choices[rng.int(2)];
    const nextMask = nx === -1 ? 1 << outer : GRAPH[nx].reduce((m, [sym]) => m | (1 << sym), 0);
    push(s, nextMask);
    node = nx;
  }
  push(outer, 1 << E_);
  push(E_, 1 << B_);
  return { symbols, allowed };
}

export interface ReberStream {
  ids: Int32Array;
  allowed: Int32Array;
  /** Index of the first symbol of each string. */
  starts: number[];
}

/** A continual stream of at least `length` symbols made of whole strings. */
export function reberStream(rng: Random, length: number): ReberStream {
  const ids: number[] = [], allowed: number[] = [], starts: number[] = [];
  while (ids.length < length) {
    const s = embeddedReber(rng);
    starts.push(ids.length);
    ids.push(...s.symbols);
    allowed.push(...s.allowed);
  }
  return { ids: Int32Array.from(ids), allowed: Int32Array.from(allowed), starts };
}

export interface ContinualTask extends Task {
  /** The test streams, one per batch row, scored in one pass without resets. */
  readonly streams: ReberStream[];
  /** The fraction of test strings predicted entirely legally, and the mean strings before the first error. */
  scoreStreams(pred: Tensor): { strings: number; beforeFirstError: number };
}

export function reberTask(window: number, testStreams: number, testLength: number, seed: number): ContinualTask {
  const rngTest = new Random((seed ^ 0x27d4eb2f) >>> 0);
  const streams = Array.from({ length: testStreams }, () => reberStream(rngTest, testLength));
  const L = Math.min(...streams.map((s) => s.ids.length));
  const ids = new Int32Array(testStreams * L);
  streams.forEach((s, b) => ids.set(s.ids.subarray(0, L), b * L));
  const test: Batch = { x: oneHot(ids, REBER.length, [testStreams, L]), y: new Int32Array(0) };
  // Training: `batch` endless streams, cut into windows; the next-symbol targets.
  let train: { rng: Random; streams: { s: ReberStream; at: number }[] } | undefined;
  const next = (st: { s: ReberStream; at: number }, rng: Random): [number, number] => {
    if (st.at + 1 >= st.s.ids.length) {
      st.s = concat(st.s.ids[st.at], reberStream(rng, 4 * window));
      st.at = 0;
    }
    const pair: [number, number] = [st.s.ids[st.at], st.s.ids[st.at + 1]];
    st.at++;
    return pair;
  };
  const scoreStreams = (pred: Tensor): { strings: number; beforeFirstError: number } => {
    const C = REBER.length;
    let ok = 0, total = 0, first = 0;
    streams.forEach((s, b) => {
      let seenError = false, before = 0;
      for (let k = 0; k < s.starts.length; k++) {
        const a = s.starts[k], e = k + 1 < s.starts.length ? s.starts[k + 1] : s.ids.length;
        if (e > L - 1) break;  // scored: strings whose every next symbol lies in the test window
        let right = true;
        for (let t = a; t < e && right; t++) {
          const row = (b * L + t) * C;
          let best = 0;
          for (let c = 1; c < C; c++) if (pred.data[row + c] > pred.data[row + best]) best = c;
          if (!((s.allowed[t] >> best) & 1)) right = false;
        }
        total++;
        if (right) ok++;
        else seenError = true;
        if (right && !seenError) before++;
      }
      first += before / streams.length;
    });
    return { strings: ok / total, beforeFirstError: first };
  };
  return {
    name: `continual Reber (window ${window})`, inputSize: REBER.length, outputSize: REBER.length, perStep: true, loss: 'ce', continual: true,
    steps: window, metric: 'strings correct', baseline: 0, lowerIsBetter: false, solvedAt: 0.95,
    streams, scoreStreams,
    train(rng, batch) {
      if (!train || train.rng !== rng || train.streams.length !== batch) {
        train = { rng, streams: Array.from({ length: batch }, () => ({ s: reberStream(rng, 4 * window), at: 0 })) };
      }
      const x = new Int32Array(batch * window), y = new Int32Array(batch * window);
      train.streams.forEach((st, b) => {
        for (let t = 0; t < window; t++) [x[b * window + t], y[b * window + t]] = next(st, rng);
      });
      return { x: oneHot(x, REBER.length, [batch, window]), y };
    },
    test,
    score: (pred) => scoreStreams(pred).strings,
  };
}

function concat(last: number, s: ReberStream): ReberStream {
  return { ids: Int32Array.from([last, ...s.ids]), allowed: Int32Array.from([0, ...s.allowed]), starts: s.starts.map((k) => k + 1) };
}

// ---------------------------------------------------------------------------------------------
// Character-level language model on the demo's text (examples/data/kjv.txt.gz): bits per character
// on held-out text, against the unigram baseline (the entropy of the character frequencies).

const here = path.dirname(fileURLToPath(import.meta.url));
/** The demo's corpus, found from lib/lab or dist/lab. */
export const DEFAULT_TEXT = path.resolve(here, '..', '..', 'examples', 'data', 'kjv.txt.gz');

export function readText(file: string): string {
  const raw = fs.readFileSync(file);
  return (file.endsWith('.gz') ? zlib.gunzipSync(raw) : raw).toString('utf8');
}

export function charTask(text: string, window: number, trainChars: number, testWindows: number, seed: number): Task {
  const trainText = text.slice(0, trainChars);
  const heldOut = text.slice(Math.floor(text.length * 0.9));
  const chars = [...new Set(trainText)].sort();
  const index = new Map(chars.map((c, i) => [c, i]));
  const V = chars.length + 1;  // the last id: a character unseen in training
  const encode = (s: string): Int32Array => Int32Array.from(s, (c) => index.get(c) ?? V - 1);
  const trainIds = encode(trainText), testIds = encode(heldOut.slice(0, testWindows * window + 1));
  const counts = new Float64Array(V).fill(1);
  for (const c of trainIds) counts[c]++;
  const total = counts.reduce((a, b) => a + b, 0);
  let unigram = 0;
  for (let k = 1; k < testIds.length; k++) unigram -= Math.log2(counts[testIds[k]] / total);
  unigram /= testIds.length - 1;
  const cut = (ids: Int32Array, starts: number[]): Batch => {
    const x = new Int32Array(starts.length * window), y = new Int32Array(starts.length * window);
    starts.forEach((s, b) => {
      x.set(ids.subarray(s, s + window), b * window);
      y.set(ids.subarray(s + 1, s + window + 1), b * window);
    });
    return { x: oneHot(x, V, [starts.length, window]), y };
  };
  void seed;
  const test = cut(testIds, Array.from({ length: testWindows }, (_, k) => k * window));
  return {
    name: `char LM (window ${window})`, inputSize: V, outputSize: V, perStep: true, loss: 'ce', continual: false, steps: window,
    metric: 'bits/char', baseline: unigram, lowerIsBetter: true, solvedAt: unigram - 1,
    train: (rng, batch) => cut(trainIds, Array.from({ length: batch }, () => rng.int(trainIds.length - window - 1))),
    test,
    score: (pred) => bitsPerSymbol(pred, test.y as Int32Array),
  };
}
