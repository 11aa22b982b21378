// The only module that touches the native addon: loads it with node-gyp-build (a prebuild from
// prebuilds/ when one matches, else build/Release/rnnkit.node) and declares its raw surface.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export type NativeArray = Float32Array | Float64Array;
export type NativeCell = 'rnn_tanh' | 'rnn_relu' | 'lstm' | 'gru';

/**
 * The bound of the native core's numeric cell options (native/binding/addon.cc read_number): clip,
 * cellClip and projClip must lie in [0, 1e30], activation alpha/beta in [−1e30, 1e30].
 */
export const NATIVE_NUMBER_LIMIT = 1e30;

/** An activation by its ONNX name, with alpha/beta. */
export interface NativeActivationConfig {
  name: string;
  alpha?: number;
  beta?: number;
}

/** Options beyond a cell's default form (see native/cells/cell_kinds.h). */
export interface NativeCellOptions {
  gateActivation?: NativeActivationConfig;       // LSTM i, f, o; GRU r, z
  candidateActivation?: NativeActivationConfig;  // LSTM block input, GRU n, SimpleRNN
  outputActivation?: NativeActivationConfig;     // LSTM h
  clip?: number;                                 // ONNX clip of gate pre-activations
  peephole?: boolean;                            // LSTM only, from here down
  noInputGate?: boolean;
  noForgetGate?: boolean;
  noOutputGate?: boolean;
  coupledInputForget?: boolean;
  fullGateRecurrence?: boolean;                  // weightGr [3H, 3H]
  cellClip?: number;
  projSize?: number;                             // LSTM projection (LSTMP)
  projClip?: number;
}

/** One layer-direction over a whole sequence; sizes as in the time-major buffers. */
export interface NativeConfig extends NativeCellOptions {
  cell: NativeCell;
  linearBeforeReset?: boolean;
  reverse?: boolean;
  steps: number;
  batch: number;
  inputSize: number;
  hiddenSize: number;
}

/**
 * The parameter buffers of one layer-direction, as native/cells/cell_params.h lists them (the
 * addon's cellParameters() returns that table; test/validation.test.ts checks it against this one):
 * weightIh [G·H, inputSize], weightHh [G·H, P], biasIh/biasHh [G·H] (optional), peephole [3H]
 * (config.peephole: p_i, p_f, p_o), weightHr [P, H] (config.projSize), weightGr [3H, 3H] (full gate
 * recurrence). Gradient buffers of the single-layer API are named `d` + the capitalised name.
 */
export const CELL_PARAMETERS = ['weightIh', 'weightHh', 'biasIh', 'biasHh', 'peephole', 'weightHr', 'weightGr'] as const;
export type CellParamName = (typeof CELL_PARAMETERS)[number];
/** A layer-direction's parameters: weightIh and weightHh always, the others where the cell has them. */
export type NativeCellWeights = { weightIh: NativeArray; weightHh: NativeArray } & Partial<Record<CellParamName, NativeArray>>;
type NativeCellGradientBuffers = { [K in CellParamName as `d${Capitalize<K>}`]?: NativeArray };

/** A row of the addon's cellParameters() table. */
export interface NativeCellParameter {
  name: CellParamName;
  gradient: string;
  torch: string;
  optional: boolean;
  gradientOptional: boolean;
}

export interface NativeForwardBuffers extends Partial<Record<CellParamName, NativeArray>> {
  x: NativeArray;            // [steps, batch, inputSize]
  weightIh: NativeArray;
  weightHh: NativeArray;
  h0?: NativeArray;          // [batch, H]
  c0?: NativeArray;          // [batch, H]
  y?: NativeArray;           // out [steps, batch, H]
  hN?: NativeArray;          // out [batch, H]
  cN?: NativeArray;          // out [batch, H]
  workspace?: NativeArray;   // [workspaceSize(config)] for training
}

export interface NativeBackwardBuffers extends Partial<Record<CellParamName, NativeArray>>, NativeCellGradientBuffers {
  x: NativeArray;
  weightIh: NativeArray;
  weightHh: NativeArray;
  workspace: NativeArray;
  dy?: NativeArray;
  dhN?: NativeArray;
  dcN?: NativeArray;
  dx?: NativeArray;
  dh0?: NativeArray;
  dc0?: NativeArray;
  dWeightIh: NativeArray;
  dWeightHh: NativeArray;
}

/** One layer-direction of a prepared stack: a NativeConfig without steps, batch and reverse. */
export type NativeCellSpec = Omit<NativeConfig, 'steps' | 'batch' | 'reverse'>;

export interface NativeStackSpec {
  numLayers: number;
  numDirections: 1 | 2;
  version?: number;
  /** numLayers·numDirections cells, layer-major (PyTorch's order: l0, l0_reverse, l1, …). */
  cells: NativeCellSpec[];
}

/** An opaque prepared stack (weights copied and packed once). */
export interface NativeStack {
  readonly __nativeStack: never;
}
/** An opaque training run (what backward needs, held natively). */
export interface NativeRun {
  readonly __nativeRun: never;
}

/** Keep probabilities in (0, 1] (1 = off) and where they apply; see native/core/grid.h DropoutSpec. */
export interface NativeDropout {
  seed: number;
  inputKeep?: number;
  stateKeep?: number;
  outputKeep?: number;
  betweenKeep?: number;
  variational?: boolean;
  stateOnInitial?: boolean;
}

export interface NativeStackCall {
  steps: number;
  batch: number;
  x: NativeArray;              // [steps, batch, inputSize], or [batch, steps, inputSize] with batchFirst
  batchFirst?: boolean;        // x, y, dy and dx are batch-major
  lengths?: Int32Array;        // [batch]
  mask?: Uint8Array;           // [batch, steps]
  prePadding?: boolean;
  processingOrder?: boolean;
  h0?: NativeArray;            // [layers·directions, batch, P]
  c0?: NativeArray;            // [layers·directions, batch, H]
  merge?: 'concat' | 'sum' | 'mul' | 'ave';
  training?: boolean;
  dropout?: NativeDropout;
  /** The caller's array for y (written in place by stackForward, on completion by stackForwardAsync; returned as y). */
  y?: NativeArray;
  /**
   * 'states': only the final states are wanted (a layer returning its last output): no y is made
   * or returned, and inference holds no buffer in proportion to the steps beyond the input (but a
   * bidirectional stack's intermediate layers). Default 'sequence'.
   */
  outputs?: 'sequence' | 'states';
}

export interface NativeStackResult {
  y: NativeArray;   // [steps, batch, width] ([batch, steps, width] with batchFirst); absent with outputs 'states'
  hN: NativeArray;  // [layers·directions, batch, P]
  cN?: NativeArray; // [layers·directions, batch, H]
  run?: NativeRun;
  /** Bytes the run holds natively (workspaces and packed inputs). */
  runBytes?: number;
}

/** What stackForward returns with outputs 'states': no y. */
export type NativeStackStatesResult = Omit<NativeStackResult, 'y'> & { y?: undefined };

export interface NativeStackBackwardCall {
  dy?: NativeArray;
  dhN?: NativeArray;
  dcN?: NativeArray;
  inputGradient?: boolean;
}

export interface NativeStackGradients {
  dx?: NativeArray;
  dh0: NativeArray;
  dc0?: NativeArray;
  grads: Partial<Record<CellParamName, NativeArray>>[];
}

export interface NativeBinding {
  prepareStack(spec: NativeStackSpec, weights: NativeCellWeights[]): NativeStack;
  /** Frees the native memory of a handle now (calls in flight keep what they use); a released handle is refused. */
  releaseStack(stack: NativeStack): void;
  releaseRun(run: NativeRun): void;
  stackInfo(stack: NativeStack): { version: number; bytes: number; float64: boolean; layers: number; directions: number };
  stackForward(stack: NativeStack, call: NativeStackCall & { outputs: 'states' }): NativeStackStatesResult;
  stackForward(stack: NativeStack, call: NativeStackCall): NativeStackResult;
  stackForwardAsync(stack: NativeStack, call: NativeStackCall & { outputs: 'states' }): Promise<NativeStackStatesResult>;
  stackForwardAsync(stack: NativeStack, call: NativeStackCall): Promise<NativeStackResult>;
  stackBackward(run: NativeRun, call: NativeStackBackwardCall): NativeStackGradients;
  stackBackwardAsync(run: NativeRun, call: NativeStackBackwardCall): Promise<NativeStackGradients>;
  /**
   * Prepared stacks and training runs alive (in every thread), and their native bytes; envBytes:
   * those of this thread's environment, of which V8 is told (reportedBytes) only what exceeds
   * unreportedBudget (see account_native_bytes in native/binding/grid_binding.cc).
   */
  liveObjects(): { stacks: number; runs: number; stackBytes: number; runBytes: number; envBytes: number; reportedBytes: number; unreportedBudget: number; mallocInUse?: number };
  cellParameters(): NativeCellParameter[];
  /** The dropout generator's keep values (0 or 1/keep) for one stream, [steps, batch, width]. */
  dropoutMask(args: { seed: number; stream: number; steps: number; batch: number; width: number; keep: number }): Float64Array;

  /** Scalars of the training workspace; a RangeError when training this config passes the limits. */
  workspaceSize(config: NativeConfig, dtype?: 'float32' | 'float64'): number;
  forward(config: NativeConfig, buffers: NativeForwardBuffers): void;
  forwardAsync(config: NativeConfig, buffers: NativeForwardBuffers): Promise<void>;
  backward(config: NativeConfig, buffers: NativeBackwardBuffers): void;
  backwardAsync(config: NativeConfig, buffers: NativeBackwardBuffers): Promise<void>;
  /**
   * 'deferred' when a running call holds the pool (the next call to take it applies the change).
   * Throws an Error when the system refuses threads (the pool keeps those it started).
   */
  setNumThreads(n: number): 'applied' | 'deferred';
  /** The memory a training call may use (workspace + backward scratch), in bytes. */
  setMaxTrainingBytes(bytes: number): void;
  getMaxTrainingBytes(): number;
  /**
   * c[m, n] = alpha·op(a)·op(b) + beta·c (row-major; a [m, k] or [k, m] with transA, b [k, n] or
   * [n, k] with transB; alpha 1 and beta 0 by default), on the calling thread with OpenBLAS.
   */
  gemm(
    config: { transA?: boolean; transB?: boolean; m: number; n: number; k: number; alpha?: number; beta?: number },
    buffers: { a: NativeArray; b: NativeArray; c: NativeArray },
  ): void;
  /** Makes the rows of each of `blocks` stacked [n, n] matrices in q orthonormal, in place. */
  orthonormalizeRows(q: Float64Array, n: number, blocks?: number): void;
  getNumThreads(): number;
  /** Async calls of one JavaScript thread allowed on libuv threads at once (see getMaxRunningCalls). */
  maxRunningCalls(): number;
  /** The kernel builds in use: the step kernels' ISA (RNNKIT_ISA or the best), the best the CPU runs, the packed GEMM's. */
  cpuInfo(): CpuInfo;
  /**
   * This machine's limits, measured on the calling thread (blocks for about 5·ms): the FMA peak of
   * the widest vectors of the active ISA on 1 thread and on `threads` pool threads at once, the
   * packed GEMM's rate on M = 64, N = 1024, K = 256 (one call per step, split over the pool), and
   * one thread's rate reading a 256 KiB buffer (L2).
   * ms in [1, 60000] (default 200) per figure; threads in [1, the pool's threads] (default all).
   */
  measurePeak(options?: { ms?: number; threads?: number }): PeakInfo;
}

/** measurePeak()'s figures, GFLOP/s (float32, 2 flops per FMA lane), and one thread's rate reading a 256 KiB buffer (L2), GB/s. */
export interface PeakInfo {
  isa: IsaName;
  gemmIsa: IsaName;
  threads: number;
  ms: number;
  fmaPeakGflops1: number;
  fmaPeakGflopsAll: number;
  gemmGflops1: number;
  gemmGflopsAll: number;
  l2ReadGBs1: number;
}

export type IsaName = 'avx512' | 'avx2' | 'generic';
export interface CpuInfo {
  isa: IsaName;
  best: IsaName;
  gemm: IsaName;
}

const require = createRequire(import.meta.url);
const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function load(): NativeBinding {
  // RNNKIT_ADDON names a build to load instead (the sanitizer builds: scripts/sanitize.mjs).
  const override = process.env.RNNKIT_ADDON;
  if (override) return require(path.resolve(override)) as NativeBinding;
  const nodeGypBuild = require('node-gyp-build') as (dir: string) => unknown;
  try {
    return nodeGypBuild(packageRoot) as NativeBinding;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(
      `rnnkit: the native addon could not be loaded (${reason}). ` +
        'Build it from source with `npm run compile` (needs cmake, a C++17 compiler and OpenBLAS: ' +
        'Debian/Ubuntu `sudo apt-get install -y libopenblas-dev`).',
    );
  }
}

export const native: NativeBinding = load();
