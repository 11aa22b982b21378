// The implementations timed by bench.ts: rnnkit itself, onnxruntime-node and tfjs (cpu and wasm
// backends), all in this process. PyTorch runs in a child process (torch-peer.ts).
import { DropoutWrapper, getNumThreads, setNumThreads, Tensor } from '../lib/index.js';
import type { Scalar as TfScalar, Tensor as TfTensor, Variable as TfVariable } from '@tensorflow/tfjs';
import { directions, outputSize, type BenchCase, type DropoutRow, type LstmVariantRow } from './cases.js';
import { layersWithSameWeights, nativeStack, probeGoBackwardsOrder, RnnkitStack, type Problem, type TorchWeights } from './problem.js';

/** One implementation of one case, set up and ready to be timed. */
export interface Impl {
  /** Unique within a case: 'rnnkit', 'rnnkit-rb', 'rnnkit-js', 'rnnkit-len', 'rnnkit-drop', 'onnxruntime', 'tfjs-cpu', 'tfjs-wasm', 'torch'. */
  key: string;
  /** Name printed in the report. */
  label: string;
  /** Threads it computes with. */
  threads: number;
  /** Key of the rnnkit row its ratio is taken against (its own key for an rnnkit row). */
  baseline: string;
  /** Only a few timed calls (tfjs-cpu: seconds per call); see --tfjs-reps. */
  slow?: boolean;
  /** Printed under the case's table. */
  note?: string;
  /** Runs `calls` calls one after the other; the wall time of each, in ms. */
  measure(calls: number): Promise<number[]>;
  /**
   * One inference forward on the shared input and weights: [B, T, dirs·H], batch-first. Compared with
   * the baseline's to show that the peer computes the same function. Absent when not comparable.
   */
  check?(): Promise<Float32Array>;
  /**
   * When present, check()'s output is compared with this output instead of the baseline's (D2v: its
   * output with lengths is not the full-length one); checkNote says what it is.
   */
  checkReference?(): Promise<Float32Array>;
  checkNote?: string;
  /**
   * Share of the case's GEMM work one call needs (D2v: Σlengths / (B·T)); scales its GFLOP/s, and is
   * its expected ratio when padding costs nothing. Default 1.
   */
  workFraction?: number;
  release(): Promise<void>;
}

/** Times `fn` once per call; awaits only when fn returns a promise, so sync calls pay no tick. */
/** A positive integer command-line value (`name` in the message), or `dflt` when absent. */
export function positiveInt(v: string | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`${name}: expected a positive integer, got '${v}'`);
  return n;
}

export async function timeCalls(calls: number, fn: () => unknown): Promise<number[]> {
  const ms: number[] = [];
  for (let k = 0; k < calls; k++) {
    const t0 = performance.now();
    const r = fn();
    if (r instanceof Promise) await r;
    ms.push(performance.now() - t0);
  }
  return ms;
}

// ---------------------------------------------------------------------------------------------
// rnnkit

function useThreads(n: number): void {
  if (getNumThreads() !== n) setNumThreads(n);
}

/**
 * rnnkit through its public API: Tensor in, batch-first, the sync forward (and backward), so the
 * batch-first <-> time-major conversions are part of the time, as a user sees it. A deep or
 * bidirectional case runs one native stack (LSTM({ numLayers, bidirectional })) with the problem's
 * weights; single-layer cases run the problem's layer itself.
 * `resetAfter: false` gives the reset-before GRU twin (same weights) that tfjs is compared with.
 */
export function rnnkitImpl(p: Problem, threads: number, resetAfter = true, variant?: LstmVariantRow): Impl {
  const { c } = p;
  if (variant) {
    const stack = new RnnkitStack(c, layersWithSameWeights(p, true, variant.options));
    const x = Tensor.from(p.x, [c.batch, c.steps, c.inputSize]);
    return {
      key: variant.key,
      label: variant.label,
      threads,
      baseline: 'rnnkit',
      async measure(calls) {
        useThreads(threads);
        return timeCalls(calls, () => stack.forward(x));
      },
      async release() {},
    };
  }
  const key = resetAfter ? 'rnnkit' : 'rnnkit-rb';
  const label = resetAfter ? 'rnnkit' : 'rnnkit (GRU reset-before)';
  if (isStack(c)) {
    if (!resetAfter) throw new Error('rnnkit-rb: single-layer GRU cases only');
    return nativeStackImpl(p, threads, { key, label, baseline: key, note: `rnnkit: ${stackDescription(c)}, one native call per forward and per backward, weights copied from the composed layers` });
  }
  const layers = resetAfter ? p.layers : layersWithSameWeights(p, false);
  const stack = new RnnkitStack(c, layers);
  const x = Tensor.from(p.x, [c.batch, c.steps, c.inputSize]);
  const dy = c.work === 'train' ? Tensor.from(p.dy, [c.batch, c.steps, outputSize(c)]) : undefined;
  return {
    key,
    label,
    threads,
    baseline: key,
    async measure(calls) {
      useThreads(threads);
      return timeCalls(calls, dy ? () => stack.train(x, dy) : () => stack.forward(x));
    },
    async check() {
      useThreads(threads);
      return stack.forward(x);
    },
    async release() {},
  };
}

/** A case with more than one layer-direction (D2): rnnkit runs it as one native stack. */
export function isStack(c: BenchCase): boolean {
  return c.layers > 1 || c.bidirectional;
}

function stackDescription(c: BenchCase): string {
  const cls = c.cell === 'lstm' ? 'LSTM' : 'GRU';
  return `${cls}({ numLayers: ${c.layers}${c.bidirectional ? ', bidirectional: true' : ''} })`;
}

/**
 * The native stack of a deep/bidirectional case, timed like the other rnnkit rows: forward (and
 * backward) through the public API, optionally with the case's lengths or inside a DropoutWrapper.
 */
function nativeStackImpl(
  p: Problem,
  threads: number,
  row: { key: string; label: string; baseline: string; note?: string },
  extra: { lengths?: number[]; dropout?: DropoutRow } = {},
): Impl {
  const { c } = p;
  const { batch: B, steps: T, inputSize: I } = c;
  const inner = nativeStack(p);
  const layer = extra.dropout ? new DropoutWrapper(inner, extra.dropout) : inner;
  const x = Tensor.from(p.x, [B, T, I]);
  const dy = c.work === 'train' ? Tensor.from(p.dy, [B, T, outputSize(c)]) : undefined;
  const lengths = extra.lengths;
  const trainOptions = lengths ? { training: true, lengths } : { training: true };
  const inferOptions = lengths ? { lengths } : undefined;
  const impl: Impl = {
    ...row,
    threads,
    async measure(calls) {
      useThreads(threads);
      return timeCalls(
        calls,
        dy
          ? () => {
              const { run } = layer.forward(x, trainOptions);
              const dx = layer.backward(run!, dy).input;
              run!.release();  // as Model.fit does: the run's native memory goes back now, not at the next GC
              return dx;
            }
          : () => layer.forward(x, inferOptions).output,
      );
    },
    async check() {
      useThreads(threads);
      return layer.forward(x, inferOptions).output.data as Float32Array;
    },
    async release() {},
  };
  if (lengths) {
    // With lengths the output is not the full-length one: it is compared with the same stack run
    // on each sequence cut to its length (batch 1), zeros in the padding.
    impl.workFraction = lengths.reduce((a, b) => a + b, 0) / (B * T);
    impl.checkReference = async () => {
      useThreads(threads);
      const W = outputSize(c);
      const want = new Float32Array(B * T * W);
      lengths.forEach((len, b) => {
        const xb = Tensor.from(p.x.slice(b * T * I, (b * T + len) * I), [1, len, I]);
        want.set(inner.forward(xb).output.data as Float32Array, b * T * W);
      });
      return want;
    };
    impl.checkNote = 'max|Δ| against the same stack run on each sequence cut to its length (batch 1), zeros in the padding';
  }
  if (extra.dropout) {
    // Dropout is on only in training: the check (inference) must equal the baseline's output; a
    // training forward shows that the masks are applied (outputKeepProb zeroes that share of the output).
    const y = layer.forward(x, trainOptions);
    const out = y.output.data;
    let zeros = 0;
    for (let i = 0; i < out.length; i++) if (out[i] === 0) zeros++;
    y.run?.release();
    impl.note =
      `DropoutWrapper({ ${Object.entries(extra.dropout).map(([k, v]) => `${k}: ${v}`).join(', ')} }): ` +
      `dropout in training only (the check is an inference forward, against the baseline); one training forward ` +
      `zeroes ${((100 * zeros) / out.length).toFixed(1)}% of the output (outputKeepProb ${extra.dropout.outputKeepProb} ` +
      `drops ${(100 * (1 - extra.dropout.outputKeepProb)).toFixed(0)}%)`;
  }
  return impl;
}

/** D2 as before the native stacks: four single layers composed in JS (RnnkitStack); ratio against the native row. */
export function rnnkitComposedImpl(p: Problem, threads: number): Impl {
  const { c } = p;
  const stack = new RnnkitStack(c, p.layers);
  const x = Tensor.from(p.x, [c.batch, c.steps, c.inputSize]);
  const dy = c.work === 'train' ? Tensor.from(p.dy, [c.batch, c.steps, outputSize(c)]) : undefined;
  const orderProblem = c.bidirectional ? probeGoBackwardsOrder() : undefined;
  return {
    key: 'rnnkit-js',
    label: 'rnnkit (JS-composed)',
    threads,
    baseline: 'rnnkit',
    note:
      `rnnkit (JS-composed): ${c.layers}×${directions(c)} single LSTM layers composed in the bench (goBackwards + time flip + concat in JS, ` +
      `gradients split and summed in JS), as D2 ran before native stacks; ratio = composed ms / native ms` +
      `${orderProblem ? `. WARNING: ${orderProblem}` : ''}`,
    async measure(calls) {
      useThreads(threads);
      return timeCalls(calls, dy ? () => stack.train(x, dy) : () => stack.forward(x));
    },
    async check() {
      useThreads(threads);
      return stack.forward(x);
    },
    async release() {},
  };
}

/** D2v: the native stack with the case's variable lengths (padding free); ratio against the same stack on all steps. */
export function rnnkitLengthsImpl(p: Problem, threads: number): Impl {
  if (!p.lengths) throw new Error(`${p.c.id}: no lengths`);
  return nativeStackImpl(p, threads, { key: 'rnnkit-len', label: 'rnnkit (lengths)', baseline: 'rnnkit' }, { lengths: p.lengths });
}

/** D2d: the native stack inside a DropoutWrapper; ratio against the same stack without it. */
export function rnnkitDropoutImpl(p: Problem, threads: number): Impl {
  if (!p.c.dropout) throw new Error(`${p.c.id}: no dropout options`);
  return nativeStackImpl(p, threads, { key: 'rnnkit-drop', label: 'rnnkit (DropoutWrapper)', baseline: 'rnnkit' }, { dropout: p.c.dropout });
}

// ---------------------------------------------------------------------------------------------
// onnxruntime-node (inference only), one-operator ONNX models from test/helpers/onnx.ts

/** Batch-first [B, T, F] -> time-major [T, B, F]. */
function toTimeMajor(a: Float32Array, B: number, T: number, F: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) out.set(a.subarray((b * T + t) * F, (b * T + t + 1) * F), (t * B + b) * F);
  return out;
}

type OnnxHelper = typeof import('../test/helpers/onnx.js');
let onnxHelper: Promise<OnnxHelper> | undefined;

/** Loads onnxruntime-node (through the tests' ONNX helper) once; rejects when it is not installed. */
export function loadOnnxHelper(): Promise<OnnxHelper> {
  onnxHelper ??= import('../test/helpers/onnx.js');
  return onnxHelper;
}

export async function ortImpl(p: Problem, threads: number): Promise<Impl> {
  const { c } = p;
  if (c.work !== 'forward' || c.layers !== 1 || c.bidirectional) throw new Error('onnxruntime runs inference cases only');
  const { createRunner, torchToOnnx } = await loadOnnxHelper();
  const op = c.cell === 'lstm' ? 'LSTM' : 'GRU';
  const { W, R, B: bias } = torchToOnnx(op, c.hiddenSize, p.weights[0][0]);
  const { batch, steps, inputSize: I, hiddenSize: H } = c;
  const runner = await createRunner({
    op,
    T: steps,
    N: batch,
    I,
    H,
    W,
    R,
    B: bias,
    ...(op === 'GRU' && { linearBeforeReset: true }),
    threads,
    preallocatedY: true,  // as rnnkit's rows write into one output tensor (forward's options.output)
  });
  const xTime = toTimeMajor(p.x, batch, steps, I);
  return {
    key: 'onnxruntime',
    label: 'onnxruntime-node',
    threads,
    baseline: 'rnnkit',
    note: 'onnxruntime: input already time-major (no layout conversion timed); output Y [T, 1, B, H] into one pre-allocated tensor',
    measure: (calls) => timeCalls(calls, () => runner.run(xTime)),
    async check() {
      const { Y } = await runner.run(xTime); // [T, 1, B, H]
      const out = new Float32Array(Y.length);
      for (let t = 0; t < steps; t++) for (let b = 0; b < batch; b++) out.set(Y.subarray((t * batch + b) * H, (t * batch + b + 1) * H), (b * steps + t) * H);
      return out;
    },
    release: () => runner.release(),
  };
}

// ---------------------------------------------------------------------------------------------
// @tensorflow/tfjs, cpu (pure JS) and wasm backends

type Tf = typeof import('@tensorflow/tfjs');
let tfModule: Promise<Tf> | undefined;
let wasmModule: Promise<typeof import('@tensorflow/tfjs-backend-wasm')> | undefined;

/** Loads tfjs once (lazily, so --no-tfjs runs never pay for it). */
export function loadTf(): Promise<Tf> {
  tfModule ??= import('@tensorflow/tfjs');
  return tfModule;
}

/** Activates a tfjs backend; 'wasm' registers @tensorflow/tfjs-backend-wasm first (its .wasm comes from node_modules). */
export async function activateTfBackend(backend: 'cpu' | 'wasm'): Promise<Tf> {
  const tf = await loadTf();
  if (backend === 'wasm') {
    wasmModule ??= import('@tensorflow/tfjs-backend-wasm');
    await wasmModule;
  }
  if (tf.getBackend() !== backend) {
    const ok = await tf.setBackend(backend);
    if (!ok || tf.getBackend() !== backend) throw new Error(`tfjs backend '${backend}' could not be activated`);
  }
  return tf;
}

/** Describes the wasm backend as it runs here (threads, SIMD). */
export async function wasmBackendInfo(): Promise<{ threads: number; simd: boolean; multithread: boolean }> {
  const tf = await activateTfBackend('wasm');
  const wasm = await wasmModule!;
  return {
    threads: wasm.getThreadsCount(),
    simd: Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')),
    multithread: Boolean(await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT')),
  };
}

/** Keras gate block k holds PyTorch gate block ORDER[k]: LSTM i,f,c,o = i,f,g,o; GRU z,r,h <- r,z,n. */
function kerasGateOrder(c: BenchCase): readonly number[] {
  return c.cell === 'lstm' ? [0, 1, 2, 3] : [1, 0, 2];
}

/** PyTorch [G·H, cols] -> Keras [cols, G·H], gate blocks reordered. */
function kerasMatrix(w: Float32Array, cols: number, H: number, order: readonly number[]): Float32Array {
  const GH = order.length * H;
  const out = new Float32Array(cols * GH);
  order.forEach((torchGate, kerasGate) => {
    for (let j = 0; j < H; j++) {
      const src = (torchGate * H + j) * cols;
      const col = kerasGate * H + j;
      for (let k = 0; k < cols; k++) out[k * GH + col] = w[src + k];
    }
  });
  return out;
}

/** Keras kernel, recurrent_kernel and bias of one layer-direction; the two PyTorch biases fold into one. */
function kerasWeights(c: BenchCase, w: TorchWeights, inputSize: number): [Float32Array, Float32Array, Float32Array] {
  const H = c.hiddenSize, order = kerasGateOrder(c);
  const bias = new Float32Array(order.length * H);
  order.forEach((torchGate, kerasGate) => {
    for (let j = 0; j < H; j++) bias[kerasGate * H + j] = w.bias_ih[torchGate * H + j] + w.bias_hh[torchGate * H + j];
  });
  return [kerasMatrix(w.weight_ih, inputSize, H, order), kerasMatrix(w.weight_hh, H, H, order), bias];
}

/**
 * tfjs LayersModel-style layers (tf.layers.lstm / gru with recurrentActivation 'sigmoid'; D2 as two
 * tf.layers.bidirectional with mergeMode 'concat'), weights copied from rnnkit. tfjs's GRU is the
 * reset-before form only, so GRU rows are compared with rnnkit's reset-before twin. Training is
 * tf.variableGrads of sum(output · dy) over the weights and x.
 */
export async function tfjsImpl(p: Problem, backend: 'cpu' | 'wasm'): Promise<Impl> {
  const tf = await activateTfBackend(backend);
  const { c } = p;
  const { batch: B, steps: T, inputSize: I, hiddenSize: H } = c;
  const dirs = directions(c);
  const common = {
    units: H,
    returnSequences: true,
    activation: 'tanh',
    recurrentActivation: 'sigmoid',
    // Cheap placeholders: the real weights are set right after build (tfjs's default orthogonal
    // recurrent initialiser runs a QR decomposition, slow for H = 1024 on the cpu backend).
    kernelInitializer: 'zeros',
    recurrentInitializer: 'zeros',
    biasInitializer: 'zeros',
  } as const;
  const makeCell = () => (c.cell === 'lstm' ? tf.layers.lstm({ ...common, unitForgetBias: false }) : tf.layers.gru(common));
  const layers = Array.from({ length: c.layers }, () =>
    c.bidirectional ? tf.layers.bidirectional({ layer: makeCell(), mergeMode: 'concat' }) : makeCell(),
  );
  const apply = (x: TfTensor) => layers.reduce((input, layer) => layer.apply(input) as TfTensor, x);
  tf.tidy(() => {
    apply(tf.zeros([B, 1, I]));
  });
  layers.forEach((layer, l) => {
    const inputSize = l === 0 ? I : dirs * H;
    const values = p.weights[l].flatMap((w) => kerasWeights(c, w, inputSize));
    const shapes = layer.getWeights().map((w) => w.shape);
    const tensors = values.map((v, k) => tf.tensor(v, shapes[k]));
    layer.setWeights(tensors);
    tensors.forEach((t) => t.dispose());
  });

  const x = tf.tensor3d(p.x, [B, T, I]);
  const owned: TfTensor[] = [x];
  let measure: (calls: number) => Promise<number[]>;
  if (c.work === 'forward') {
    measure = async (calls) => {
      await activateTfBackend(backend);
      return timeCalls(calls, () => {
        const y = tf.tidy(() => apply(x));
        y.dataSync();
        y.dispose();
      });
    };
  } else {
    const xVar = tf.variable(x, true);
    const dy = tf.tensor3d(p.dy, [B, T, dirs * H]);
    owned.push(xVar, dy);
    const vars = [...layers.flatMap((layer) => layer.trainableWeights.map((w) => w.read() as TfVariable)), xVar];
    measure = async (calls) => {
      await activateTfBackend(backend);
      return timeCalls(calls, () => {
        const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(apply(xVar), dy)) as TfScalar, vars);
        for (const g of Object.values(grads)) g.dataSync();
        value.dispose();
        tf.dispose(Object.values(grads));
      });
    };
  }
  const gruNote = c.cell === 'gru' ? '; GRU reset-before (tfjs has no reset-after): ratio vs rnnkit (GRU reset-before)' : '';
  const impl: Impl = {
    key: `tfjs-${backend}`,
    label: backend === 'cpu' ? 'tfjs-cpu (pure JS)' : 'tfjs-wasm (SIMD)',
    threads: 1,
    baseline: c.cell === 'gru' ? 'rnnkit-rb' : 'rnnkit',
    slow: backend === 'cpu',
    note: `${backend === 'cpu' ? 'tfjs-cpu: single-threaded JS' : 'tfjs-wasm: one thread (no multithreaded wasm in Node)'}${gruNote}`,
    measure,
    async release() {
      await activateTfBackend(backend);
      for (const layer of layers) layer.dispose();
      tf.dispose(owned.filter((t) => !t.isDisposed));
    },
  };
  // Checked on inference cases only: on a training case the extra forward would cost tfjs-cpu many seconds.
  if (c.work === 'forward') {
    impl.check = async () => {
      await activateTfBackend(backend);
      const y = tf.tidy(() => apply(x));
      const data = y.dataSync() as Float32Array;
      y.dispose();
      return data;
    };
  }
  return impl;
}
