// rnnkit: recurrent neural networks for Node.js on a C++/OpenBLAS core.
import { native, type CpuInfo } from './native.js';
export { type CpuInfo, type IsaName } from './native.js';
import { show } from './options.js';

export { Tensor, type DType, type TensorData } from './tensor.js';
export {
  Recurrent,
  SimpleRNN,
  LSTM,
  GRU,
  type RecurrentOptions,
  type SimpleRNNOptions,
  type LSTMOptions,
  type LSTMVariant,
  type GRUOptions,
  type ForwardOptions,
  type ForwardResult,
  type BackwardOptions,
  type Gradients,
  type TrainingRun,
} from './layers/recurrent.js';
export { RecurrentBase, type MergeMode } from './layers/base.js';
export { Bidirectional, DropoutWrapper, type BidirectionalOptions, type DropoutWrapperOptions } from './layers/wrappers.js';
export { Random, type Initializer } from './init.js';
export { type LoadStateDictOptions } from './params.js';
export { ACTIVATION_NAMES, type ActivationName, type ActivationSpec } from './activations.js';
export {
  Dense,
  type DenseOptions,
  type DenseActivation,
  type DenseForwardOptions,
  type DenseForwardResult,
  type DenseGradients,
  type DenseRun,
} from './layers/dense.js';
export { mseLoss, softmaxCrossEntropy, getLoss, type Loss, type LossName, type LossResult } from './train/losses.js';
export { getMetric, type Metric, type MetricName } from './train/metrics.js';
export * from './train/optimizers.js';
export * from './train/schedules.js';
export { Embedding, Dropout, RepeatVector, Masking, Activation, TimeDistributed, type EmbeddingOptions, type DropoutOptions } from './layers/shaping.js';
export { type ElementwiseActivation } from './layers/elementwise.js';
export {
  Sequential, type ModelLayer, type SequentialOptions, type CompileOptions, type FitOptions, type PredictOptions, type EvaluateOptions, type History,
} from './model/sequential.js';
export { loadModel, type SaveOptions, type LoadOptions } from './model/persistence.js';
export {
  EarlyStopping, ModelCheckpoint, ReduceLROnPlateau, CSVLogger, JSONLogger,
  type Callback, type Logs, type EarlyStoppingOptions, type ModelCheckpointOptions, type ReduceLROnPlateauOptions,
} from './model/callbacks.js';
export { layerConfig, layerFromConfig, type LayerConfig } from './model/config.js';
export { sample, type SampleOptions } from './model/sampling.js';

/**
 * Threads used by the native kernels (default: the machine's cores). Never waits for running work:
 * while async calls hold the pool, the change applies from the next call that takes it. Throws an
 * Error if the system refuses to start the threads (a pids or thread limit); the pool then keeps
 * running with the threads it has.
 */
export function setNumThreads(n: number): void {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 1024) {
    throw new RangeError(`setNumThreads: n must be an integer in [1, 1024], got ${show(n)}`);
  }
  native.setNumThreads(n);
}

export function getNumThreads(): number {
  return native.getNumThreads();
}

/**
 * How many async calls (forwardAsync, stepAsync, a batch of the Batcher…) of one JavaScript thread
 * run at once; the others wait for one to finish without holding a libuv thread. Each call runs on
 * getNumThreads() threads, so the default is cores ÷ threads (at least 1): one call at a time on
 * every core by default, two at once on 2 cores after setNumThreads(1) — which serves many small
 * calls (a request each) faster. The environment variable RNNKIT_MAX_RUNNING_CALLS, read at load,
 * sets it instead.
 */
export function getMaxRunningCalls(): number {
  return native.maxRunningCalls();
}

/**
 * Which kernel builds run on this CPU: `isa` is the step kernels' (the best the CPU runs, or the
 * environment variable RNNKIT_ISA=avx512|avx2|generic when the CPU can run it, read at load),
 * `best` the best the CPU runs, `gemm` the packed GEMM's.
 */
export function cpuInfo(): CpuInfo {
  return native.cpuInfo();
}

/**
 * The memory one training call may use (its workspace plus backward's scratch), in bytes. Default:
 * half the physical memory, or the environment variable RNNKIT_MAX_TRAINING_BYTES. A training
 * forward that would need more is a RangeError stating the size, not an out-of-memory kill.
 */
export function setMaxTrainingBytes(bytes: number): void {
  if (typeof bytes !== 'number' || !Number.isFinite(bytes) || bytes < 1) {
    throw new RangeError(`setMaxTrainingBytes: bytes must be a finite number >= 1, got ${show(bytes)}`);
  }
  native.setMaxTrainingBytes(bytes);
}

export function getMaxTrainingBytes(): number {
  return native.getMaxTrainingBytes();
}
export { modelFromKeras, modelToKeras, KerasFormatError, type KerasWeight, type KerasFlavour } from './io/keras.js';
export { loadTfjsModel, saveTfjsModel, tfjsArtifactsToModel, modelToTfjsArtifacts, TfjsFormatError, type TfjsArtifacts, type TfjsWeightSpec } from './io/tfjs.js';
export * from './io/keras-files.js';
export * from './io/onnx.js';
export * from './io/torch.js';
export {
  readModel, writeModel, detectFormat, outputFormat, parseTorchLayers, ModelFormatError, MODEL_FORMATS, WRITABLE_FORMATS, FORMAT_DESCRIPTIONS,
  type ModelFormat, type ReadModelOptions,
} from './io/formats.js';
export {
  UnsupportedFeatureError, unsupportedFeatures, FORMAT_LIMITS, GATE_ORDERS, torchToKeras, kerasToTorch, torchToOnnx, onnxToTorch,
  type RecurrentFeatures, type CellFamily, type WeightFormat, type TorchCellWeights, type KerasCellWeights, type OnnxCellWeights,
} from './io/layouts.js';
export * from './train/diagnostics.js';
export {
  runLab, writeResults, EXPERIMENTS, EXPERIMENT_DEFAULTS, type LabOptions, type LabResult, type RunResult, type FlowResult, type ExperimentName,
} from './lab/run.js';
export { CELL_NAMES, CELL_LABELS, type CellName } from './lab/cells.js';
export { ModelStream, StreamEngine, stepStreams, type StreamSnapshot, type OpenStreamOptions, type EngineOptions } from './serve/stream.js';
export {
  Batcher, QueueFullError, BatcherClosedError, RequestAbortedError, type BatcherOptions, type RequestOptions, type BatchInfo, type BatcherStats,
} from './serve/batcher.js';
export { ModelPool, type ModelPoolOptions, type PoolPredictOptions } from './serve/pool.js';
