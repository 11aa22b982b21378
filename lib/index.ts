// rnnkit: recurrent neural networks for Node.js on a C++/OpenBLAS core.
import { native } from './native.js';

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
export { Random, type Initializer } from './init.js';
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
export { mseLoss, softmaxCrossEntropy, type LossResult } from './train/losses.js';
export { Adam, SGD, clipGradNorm, type Optimizer, type AdamOptions, type SGDOptions } from './train/optimizers.js';

/** Threads used by the native kernels (default: the machine's cores). */
export function setNumThreads(n: number): void {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 1024) {
    throw new RangeError(`setNumThreads: n must be an integer in [1, 1024], got ${String(n)}`);
  }
  native.setNumThreads(n);
}

export function getNumThreads(): number {
  return native.getNumThreads();
}
