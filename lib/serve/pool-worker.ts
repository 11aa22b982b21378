// A worker of ModelPool (lib/serve/pool.ts): loads each saved model once (on its first task) and
// keeps it; every task is one predict on the model, the input and output as plain typed arrays.
import { threadId } from 'node:worker_threads';
import { loadModel } from '../model/persistence.js';
import { Tensor } from '../tensor.js';
import type { Sequential } from '../model/sequential.js';

export interface PoolTask {
  dir: string;
  data: Float32Array | Float64Array;
  shape: number[];
  lengths?: number[];
  batchSize?: number;
}

export interface PoolResult {
  data: Float32Array | Float64Array;
  shape: number[];
  /** The worker's thread id and how many times it has loaded this model (1: loaded once). */
  threadId: number;
  loads: number;
}

const models = new Map<string, Promise<Sequential>>();
const loads = new Map<string, number>();

export default async function run(task: PoolTask): Promise<PoolResult> {
  let m = models.get(task.dir);
  if (!m) {
    loads.set(task.dir, (loads.get(task.dir) ?? 0) + 1);
    m = loadModel(task.dir, { compile: false });
    models.set(task.dir, m);
    m.catch(() => models.delete(task.dir));
  }
  const model = await m;
  const y = await model.predict(Tensor.from(task.data, task.shape), {
    ...(task.lengths ? { lengths: task.lengths } : {}),
    ...(task.batchSize ? { batchSize: task.batchSize } : {}),
  });
  return { data: y.data, shape: [...y.shape], threadId, loads: loads.get(task.dir)! };
}
