// Loss functions returning the scalar loss and its gradient with respect to the prediction.
import { show } from '../options.js';
import { bufferProblem, checkTensor, describeBufferProblem, elementCount, formatShape, Tensor } from '../tensor.js';

export interface LossResult {
  /** The mean loss. */
  loss: number;
  /** dLoss/dPrediction, same shape and dtype as the prediction. */
  grad: Tensor;
}

/**
 * Mean squared error over all elements: loss = Σ (pred − target)² / n, grad = 2 (pred − target) / n.
 * pred and target: the same shape (any rank, at least one element) and dtype.
 */
export function mseLoss(pred: Tensor, target: Tensor): LossResult {
  if (!Tensor.isTensor(pred)) throw new TypeError('mseLoss: pred must be a Tensor');
  const problem = elementCount(pred.data) === 0 ? bufferProblem(pred.data) : undefined;
  if (problem) throw new TypeError(`mseLoss: pred: ${describeBufferProblem(problem)}`);
  if (pred.size === 0) throw new RangeError(`mseLoss: pred must have at least one element, got shape ${formatShape(pred.shape)}`);
  checkTensor(target, 'mseLoss: target (same shape as pred)', pred.shape, pred.shape.map(() => ''), pred.dtype);
  const p = pred.data, t = target.data, n = p.length;
  const grad = Tensor.zeros(pred.shape, pred.dtype);
  const g = grad.data;
  let sum = 0;
  for (let k = 0; k < n; k++) {
    const e = p[k] - t[k];
    sum += e * e;
    g[k] = (2 * e) / n;
  }
  return { loss: sum / n, grad };
}

/**
 * Softmax followed by the negative log-likelihood of the labels, averaged over the batch:
 * loss = mean_b (logsumexp(logits_b) − logits_b[labels_b]), grad = (softmax(logits) − onehot(labels)) / batch.
 * logits: [batch, classes] with batch, classes >= 1; labels: batch integers in [0, classes).
 */
export function softmaxCrossEntropy(logits: Tensor, labels: Int32Array | readonly number[]): LossResult {
  const where = 'softmaxCrossEntropy';
  if (!Tensor.isTensor(logits)) throw new TypeError(`${where}: logits must be a Tensor of shape [batch, classes]`);
  if (logits.rank !== 2 || logits.shape[0] < 1 || logits.shape[1] < 1) {
    throw new RangeError(`${where}: logits must have shape [batch, classes] with batch, classes >= 1, got ${formatShape(logits.shape)}`);
  }
  const [batch, classes] = logits.shape as [number, number];
  checkTensor(logits, `${where}: logits`, [batch, classes], ['batch', 'classes'], logits.dtype);
  if (!(labels instanceof Int32Array) && !Array.isArray(labels)) {
    throw new TypeError(`${where}: labels must be an Int32Array or an array of numbers of length batch=${batch}`);
  }
  if (labels.length !== batch) {
    throw new RangeError(`${where}: labels must have length batch=${batch}, got ${show(labels.length)}`);
  }
  const checked = new Int32Array(batch);  // read once: what was checked is what is used
  for (let r = 0; r < batch; r++) {
    const c = labels[r];
    if (!Number.isInteger(c) || c < 0 || c >= classes) {
      throw new RangeError(`${where}: labels[${r}] must be an integer in [0, ${classes}), got ${show(c)}`);
    }
    checked[r] = c;
  }
  const z = logits.data;
  const grad = Tensor.zeros(logits.shape, logits.dtype);
  const g = grad.data;
  let total = 0;
  for (let r = 0; r < batch; r++) {
    const o = r * classes;
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, z[o + c]);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += Math.exp(z[o + c] - max);
    const label = checked[r];
    total += max + Math.log(sum) - z[o + label];
    for (let c = 0; c < classes; c++) g[o + c] = Math.exp(z[o + c] - max) / sum / batch;
    g[o + label] -= 1 / batch;
  }
  return { loss: total / batch, grad };
}
