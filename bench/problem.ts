// One case's shared problem: the rnnkit layers (whose weights every peer copies), the input and
// the upstream gradient; the native stack with the same weights; and the composition of single
// layer-directions into deep/bidirectional stacks in JS (the bench's D2 before native stacks).
import { GRU, LSTM, Random, Tensor, type LSTMOptions, type Recurrent, type TrainingRun } from '../lib/index.js';
import { directions, layerInputSize, outputSize, type BenchCase } from './cases.js';

/** Weights of one layer-direction in PyTorch's layout and gate order (rnnkit's own). */
export interface TorchWeights {
  weight_ih: Float32Array; // [G·H, inputSize]
  weight_hh: Float32Array; // [G·H, H]
  bias_ih: Float32Array; // [G·H]
  bias_hh: Float32Array; // [G·H]
}

export interface Problem {
  c: BenchCase;
  /** layers[l][d]: layer l, direction d (0 forward, 1 backward). */
  layers: Recurrent[][];
  /** weights[l][d], live views of the layers' parameters. */
  weights: TorchWeights[][];
  /** Input, batch-first [B, T, I]. */
  x: Float32Array;
  /** Upstream gradient of the output, batch-first [B, T, dirs·H] (train cases). */
  dy: Float32Array;
  /** Valid steps per sequence (cases with `lengths`), else undefined. */
  lengths?: number[];
}

function randomArray(n: number, rng: Random): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.uniform(-1, 1);
  return a;
}

/** Layers as rnnkit creates them (seeded), so that every run of the bench uses the same numbers. */
export function makeLayers(c: BenchCase, resetAfter = true, lstmOptions: Partial<LSTMOptions> = {}): Recurrent[][] {
  const layers: Recurrent[][] = [];
  for (let l = 0; l < c.layers; l++) {
    const row: Recurrent[] = [];
    for (let d = 0; d < directions(c); d++) {
      const options = {
        inputSize: layerInputSize(c, l),
        units: c.hiddenSize,
        returnSequences: true,
        goBackwards: d === 1,
        seed: 1 + 2 * l + d,
      };
      row.push(c.cell === 'lstm' ? new LSTM({ ...options, ...lstmOptions }) : new GRU({ ...options, resetAfter }));
    }
    layers.push(row);
  }
  return layers;
}

function weightsOf(layer: Recurrent): TorchWeights {
  const sd = layer.stateDict();
  const get = (name: string): Float32Array => {
    const t = sd[name];
    if (!t || !(t.data instanceof Float32Array)) throw new Error(`${layer.className}: no float32 parameter ${name}`);
    return t.data;
  };
  return { weight_ih: get('weight_ih_l0'), weight_hh: get('weight_hh_l0'), bias_ih: get('bias_ih_l0'), bias_hh: get('bias_hh_l0') };
}

export function makeProblem(c: BenchCase): Problem {
  const layers = makeLayers(c);
  const rng = new Random(12345);
  return {
    c,
    layers,
    weights: layers.map((row) => row.map(weightsOf)),
    x: randomArray(c.batch * c.steps * c.inputSize, rng),
    dy: c.work === 'train' ? randomArray(c.batch * c.steps * outputSize(c), rng) : new Float32Array(0),
    lengths: caseLengths(c),
  };
}

/** A `lengths` case's lengths: integers uniform in [ceil(T·minFraction), T], drawn by Random(seed). */
export function caseLengths(c: BenchCase): number[] | undefined {
  if (!c.lengths) return undefined;
  const T = c.steps;
  const lo = Math.min(T, Math.max(1, Math.ceil(T * c.lengths.minFraction)));
  const rng = new Random(c.lengths.seed);
  return Array.from({ length: c.batch }, () => lo + rng.int(T - lo + 1));
}

/**
 * One native stack (`numLayers`, `bidirectional`) holding the problem's weights: layer l's forward
 * direction gets the weights of layers[l][0], its reverse direction those of the goBackwards layer
 * layers[l][1] (PyTorch names `weight_ih_l{l}[_reverse]` …, PyTorch layout: rnnkit's own), so it
 * computes what the composed stack and every peer compute.
 */
export function nativeStack(p: Problem): Recurrent {
  const { c } = p;
  const options = {
    inputSize: c.inputSize,
    units: c.hiddenSize,
    numLayers: c.layers,
    bidirectional: c.bidirectional,
    returnSequences: true,
    seed: 101,
  };
  const layer = c.cell === 'lstm' ? new LSTM(options) : new GRU(options);
  const dict: Record<string, Tensor> = {};
  p.weights.forEach((row, l) =>
    row.forEach((w, d) => {
      const sfx = `_l${l}${d === 1 ? '_reverse' : ''}`;
      const rows = w.bias_ih.length;
      dict[`weight_ih${sfx}`] = Tensor.from(w.weight_ih.slice(), [rows, w.weight_ih.length / rows]);
      dict[`weight_hh${sfx}`] = Tensor.from(w.weight_hh.slice(), [rows, w.weight_hh.length / rows]);
      dict[`bias_ih${sfx}`] = Tensor.from(w.bias_ih.slice(), [rows]);
      dict[`bias_hh${sfx}`] = Tensor.from(w.bias_hh.slice(), [rows]);
    }),
  );
  layer.loadStateDict(dict); // strict: every parameter of the stack must be given, and nothing else
  return layer;
}

/** Copies the problem's weights into freshly made layers (e.g. the reset-before GRU twin). */
export function layersWithSameWeights(p: Problem, resetAfter: boolean, lstmOptions: Partial<LSTMOptions> = {}): Recurrent[][] {
  const twin = makeLayers(p.c, resetAfter, lstmOptions);
  twin.forEach((row, l) =>
    row.forEach((layer, d) => {
      const src = p.layers[l][d].stateDict();
      // strict: false — a variant may have parameters the default lacks (peepholes keep their init)
      layer.loadStateDict(Object.fromEntries(Object.entries(src).map(([k, t]) => [k, t.clone()])), { strict: false });
    }),
  );
  return twin;
}

// ---------------------------------------------------------------------------------------------
// Composition of layer-directions into a stack (what a Bidirectional wrapper and a stack will do).
// A goBackwards layer returns its outputs in reversed time order (Keras); the stack flips them back
// so that output step t of both directions belongs to input step t (PyTorch, ONNX, Keras Bidirectional).

/** [B, T, H] forward and [B, T, H] reversed-order backward outputs -> [B, T, 2H]. */
function concatDirections(fwd: Float32Array, bwdReversed: Float32Array, B: number, T: number, H: number): Float32Array {
  const out = new Float32Array(B * T * 2 * H);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const o = (b * T + t) * 2 * H;
      out.set(fwd.subarray((b * T + t) * H, (b * T + t + 1) * H), o);
      const r = (b * T + (T - 1 - t)) * H;
      out.set(bwdReversed.subarray(r, r + H), o + H);
    }
  }
  return out;
}

/** Inverse of concatDirections for gradients: [B, T, 2H] -> forward [B, T, H], backward reversed [B, T, H]. */
function splitDirections(d: Float32Array, B: number, T: number, H: number): [Float32Array, Float32Array] {
  const fwd = new Float32Array(B * T * H);
  const bwd = new Float32Array(B * T * H);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const i = (b * T + t) * 2 * H;
      fwd.set(d.subarray(i, i + H), (b * T + t) * H);
      bwd.set(d.subarray(i + H, i + 2 * H), (b * T + (T - 1 - t)) * H);
    }
  }
  return [fwd, bwd];
}

/**
 * The composition relies on the documented goBackwards order (output step k belongs to input step
 * T-1-k). Checks it on a tiny problem, against a forward layer with the same weights run on the
 * time-reversed input; returns a description of the mismatch, or undefined when the order holds.
 */
export function probeGoBackwardsOrder(): string | undefined {
  const B = 3, T = 4, I = 2, H = 2;
  const forward = new LSTM({ inputSize: I, units: H, returnSequences: true, seed: 7 });
  const backward = new LSTM({ inputSize: I, units: H, returnSequences: true, goBackwards: true, seed: 7 });
  const x = new Float32Array(B * T * I).map((_, i) => Math.sin(i + 1));
  const reversed = new Float32Array(x.length);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) reversed.set(x.subarray((b * T + t) * I, (b * T + t + 1) * I), (b * T + T - 1 - t) * I);
  const want = forward.forward(Tensor.from(reversed, [B, T, I])).output.data;
  const got = backward.forward(Tensor.from(x, [B, T, I])).output.data;
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(want[i] - got[i]));
  if (worst <= 1e-6) return undefined;
  return (
    `rnnkit LSTM goBackwards + returnSequences does not return its outputs in the documented reversed-time order ` +
    `(probe B=${B} T=${T}: max|Δ| ${worst.toExponential(1)} against a forward layer on the reversed input), so the ` +
    `composed bidirectional output is wrong and its check fails; the timing is unaffected (same work)`
  );
}

/** Runs a [layers][directions] stack of rnnkit layers: inference forward, or forward+backward. */
export class RnnkitStack {
  constructor(
    private readonly c: BenchCase,
    private readonly layers: Recurrent[][],
  ) {}

  /** One layer's output tensor, written by every inference call (forward's options.output). */
  private out: Tensor | undefined;

  /** Inference. x: [B, T, I] -> [B, T, dirs·H]; a single layer writes into one tensor kept across calls. */
  forward(x: Tensor): Float32Array {
    if (this.layers.length === 1 && this.layers[0].length === 1) {
      const layer = this.layers[0][0];
      const [B, T] = x.shape;
      if (this.out?.shape[0] !== B || this.out.shape[1] !== T) this.out = Tensor.from(new Float32Array(B * T * this.c.hiddenSize), [B, T, this.c.hiddenSize]);
      return layer.forward(x, { output: this.out }).output.data as Float32Array;
    }
    let input = x;
    for (const row of this.layers) input = this.merge(row.map((layer) => layer.forward(input).output.data as Float32Array));
    return input.data as Float32Array;
  }

  /** Forward keeping what backward needs, then backward of dy [B, T, dirs·H]; returns dx [B, T, I]. */
  train(x: Tensor, dy: Tensor): Float32Array {
    const { batch: B, steps: T, hiddenSize: H } = this.c;
    if (this.layers.length === 1 && this.layers[0].length === 1) {
      const layer = this.layers[0][0];
      const run = layer.forward(x, { training: true }).run!;
      const dx = layer.backward(run, dy).input.data as Float32Array;
      run.release();  // as Model.fit does: the run's native memory goes back now, not at the next GC
      return dx;
    }
    const runs: TrainingRun[][] = [];
    let input = x;
    for (const row of this.layers) {
      const results = row.map((layer) => layer.forward(input, { training: true }));
      runs.push(results.map((r) => r.run!));
      input = this.merge(results.map((r) => r.output.data as Float32Array));
    }
    let grad = dy.data as Float32Array;
    for (let l = this.layers.length - 1; l >= 0; l--) {
      const row = this.layers[l];
      const parts = row.length === 2 ? splitDirections(grad, B, T, H) : [grad];
      const dInputs = row.map((layer, d) => layer.backward(runs[l][d], Tensor.from(parts[d], [B, T, H])).input.data as Float32Array);
      for (const run of runs[l]) run.release();
      grad = dInputs[0];
      if (dInputs.length === 2) {
        const other = dInputs[1];
        for (let i = 0; i < grad.length; i++) grad[i] += other[i];
      }
    }
    return grad;
  }

  private merge(outputs: Float32Array[]): Tensor {
    const { batch: B, steps: T, hiddenSize: H } = this.c;
    const data = outputs.length === 2 ? concatDirections(outputs[0], outputs[1], B, T, H) : outputs[0];
    return Tensor.from(data, [B, T, outputs.length * H]);
  }
}
