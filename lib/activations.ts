// Activation functions a cell can use: the ONNX set, with its alpha/beta parameters.
//
//   sigmoid, tanh, relu
//   hardSigmoid      clip(αx + β, 0, 1)         α = 0.2, β = 0.5 (tfjs/Keras/ONNX)
//   linear           x                           (Affine with α = 1, β = 0)
//   affine           αx + β                      α = 1, β = 0
//   leakyRelu        x < 0 ? αx : x              α = 0.01
//   thresholdedRelu  x > α ? x : 0               α = 1
//   scaledTanh       α·tanh(βx)                  α = 1, β = 1
//   elu              x < 0 ? α(eˣ − 1) : x        α = 1
//   softsign         x / (1 + |x|)
//   softplus         log(1 + eˣ)
import { NATIVE_NUMBER_LIMIT } from './native.js';
import { checkOptions, numberIn, show } from './options.js';

export type ActivationName =
  | 'sigmoid'
  | 'tanh'
  | 'relu'
  | 'hardSigmoid'
  | 'linear'
  | 'affine'
  | 'leakyRelu'
  | 'thresholdedRelu'
  | 'scaledTanh'
  | 'elu'
  | 'softsign'
  | 'softplus';

export type ActivationSpec = ActivationName | { name: ActivationName; alpha?: number; beta?: number };

/** The form the native core takes: the ONNX operator name and both parameters. */
export interface NativeActivation {
  name: string;
  alpha: number;
  beta: number;
}

const TABLE: Record<ActivationName, { onnx: string; alpha: number; beta: number }> = {
  sigmoid: { onnx: 'Sigmoid', alpha: 0, beta: 0 },
  tanh: { onnx: 'Tanh', alpha: 0, beta: 0 },
  relu: { onnx: 'Relu', alpha: 0, beta: 0 },
  hardSigmoid: { onnx: 'HardSigmoid', alpha: 0.2, beta: 0.5 },
  linear: { onnx: 'Affine', alpha: 1, beta: 0 },
  affine: { onnx: 'Affine', alpha: 1, beta: 0 },
  leakyRelu: { onnx: 'LeakyRelu', alpha: 0.01, beta: 0 },
  thresholdedRelu: { onnx: 'ThresholdedRelu', alpha: 1, beta: 0 },
  scaledTanh: { onnx: 'ScaledTanh', alpha: 1, beta: 1 },
  elu: { onnx: 'Elu', alpha: 1, beta: 0 },
  softsign: { onnx: 'Softsign', alpha: 0, beta: 0 },
  softplus: { onnx: 'Softplus', alpha: 0, beta: 0 },
};

export const ACTIVATION_NAMES = Object.keys(TABLE) as ActivationName[];

/** Checks an activation option and resolves its defaults; `what` names the option in errors. */
export function resolveActivation(spec: ActivationSpec, what: string): NativeActivation {
  const name = typeof spec === 'string' ? spec : spec !== null && typeof spec === 'object' ? spec.name : undefined;
  const entry = typeof name === 'string' && Object.prototype.hasOwnProperty.call(TABLE, name) ? TABLE[name as ActivationName] : undefined;
  if (!entry) {
    throw new TypeError(`${what}: expected one of ${ACTIVATION_NAMES.join(', ')} (or { name, alpha?, beta? }), got ${typeof spec === 'object' && spec !== null && !Array.isArray(spec) ? `{ name: ${show(name)} }` : show(spec)}`);
  }
  const takes: Record<'alpha' | 'beta', readonly string[]> = {
    alpha: ['hardSigmoid', 'affine', 'leakyRelu', 'thresholdedRelu', 'scaledTanh', 'elu'],
    beta: ['hardSigmoid', 'affine', 'scaledTanh'],
  };
  if (typeof spec === 'object') checkOptions(spec, what, ['name', 'alpha', 'beta']);
  const param = (key: 'alpha' | 'beta', fallback: number): number => {
    const v = typeof spec === 'object' ? spec[key] : undefined;
    if (v === undefined) return fallback;
    if (!takes[key].includes(name as string)) {
      throw new TypeError(`${what}.${key}: '${name}' takes no ${key} (those with one: ${takes[key].join(', ')})`);
    }
    return numberIn(v, `${what}.${key}`, -NATIVE_NUMBER_LIMIT, NATIVE_NUMBER_LIMIT);
  };
  return { name: entry.onnx, alpha: param('alpha', entry.alpha), beta: param('beta', entry.beta) };
}
