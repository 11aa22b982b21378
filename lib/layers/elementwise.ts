// The activations of Dense and Activation layers, applied over the last axis of a row-major array:
// forward in place, backward from the activation's output (σ' = y(1 − y), tanh' = 1 − y², softmax's
// Jacobian-vector product y ⊙ (d − Σ d·y)).
import type { TensorData } from '../tensor.js';
import { show } from '../options.js';

export type ElementwiseActivation = 'linear' | 'sigmoid' | 'tanh' | 'relu' | 'softmax';
export const ELEMENTWISE_ACTIVATIONS: readonly ElementwiseActivation[] = ['linear', 'sigmoid', 'tanh', 'relu', 'softmax'];

/** `v` when it names an activation, else a TypeError naming `what` and listing them. */
export function checkActivation(v: unknown, what: string): ElementwiseActivation {
  if (!ELEMENTWISE_ACTIVATIONS.includes(v as ElementwiseActivation)) {
    throw new TypeError(`${what}: expected one of ${ELEMENTWISE_ACTIVATIONS.map((a) => `'${a}'`).join(', ')}, got ${show(v)}`);
  }
  return v as ElementwiseActivation;
}

/** Applies `act` in place to z (rows of `width` values). */
export function activateInPlace(act: ElementwiseActivation, z: TensorData, width: number): void {
  const n = z.length;
  switch (act) {
    case 'linear':
      return;
    case 'sigmoid':
      for (let k = 0; k < n; k++) z[k] = 1 / (1 + Math.exp(-z[k]));
      return;
    case 'tanh':
      for (let k = 0; k < n; k++) z[k] = Math.tanh(z[k]);
      return;
    case 'relu':
      for (let k = 0; k < n; k++) z[k] = z[k] > 0 ? z[k] : 0;
      return;
    case 'softmax':
      for (let o = 0; o < n; o += width) {
        let max = -Infinity;
        for (let u = 0; u < width; u++) max = Math.max(max, z[o + u]);
        let sum = 0;
        for (let u = 0; u < width; u++) sum += z[o + u] = Math.exp(z[o + u] - max);
        for (let u = 0; u < width; u++) z[o + u] /= sum;
      }
      return;
  }
}

/** dLoss/dz into `d` (in place) from dLoss/dy = d and the activation's output y (rows of `width`). */
export function activationGradInPlace(act: ElementwiseActivation, d: TensorData, y: TensorData | undefined, width: number): void {
  if (act === 'linear') return;
  const a = y!;
  const n = d.length;
  switch (act) {
    case 'sigmoid':
      for (let k = 0; k < n; k++) d[k] *= a[k] * (1 - a[k]);
      return;
    case 'tanh':
      for (let k = 0; k < n; k++) d[k] *= 1 - a[k] * a[k];
      return;
    case 'relu':
      for (let k = 0; k < n; k++) if (!(a[k] > 0)) d[k] = 0;
      return;
    case 'softmax':
      for (let o = 0; o < n; o += width) {
        let dot = 0;
        for (let u = 0; u < width; u++) dot += d[o + u] * a[o + u];
        for (let u = 0; u < width; u++) d[o + u] = a[o + u] * (d[o + u] - dot);
      }
      return;
  }
}
