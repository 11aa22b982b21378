// ModelPool: several saved models served by a pool of worker threads (piscina). Each worker loads
// a model from its saved directory once, on its first task for it, and keeps it; a task is one
// model.predict. For CPU-heavy pre/post-processing around the models, or several models side by
// side; one model's requests from many callers are better batched (Batcher) on the main thread,
// whose native calls already use every core.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';

import { Tensor } from '../tensor.js';
import { checkOptions, optionNames, positiveInt, show } from '../options.js';
import type { PoolResult, PoolTask } from './pool-worker.js';

export interface ModelPoolOptions {
  /** Model name → saved model directory (Sequential.save). */
  models: Record<string, string>;
  /** Worker threads (default 2). */
  threads?: number;
  /** Tasks waiting at most (default 1024); piscina refuses more. */
  maxQueue?: number;
}

export interface PoolPredictOptions {
  lengths?: number[];
  batchSize?: number;
}

const POOL_OPTIONS = optionNames<ModelPoolOptions>({ models: true, threads: true, maxQueue: true });
const PREDICT_OPTIONS = optionNames<PoolPredictOptions>({ lengths: true, batchSize: true });

const here = path.dirname(fileURLToPath(import.meta.url));
/** The worker module next to this one (.ts when run from source through tsx, .js once compiled). */
const workerFile = path.join(here, import.meta.url.endsWith('.ts') ? 'pool-worker.ts' : 'pool-worker.js');

export class ModelPool {
  private readonly pool: Piscina<PoolTask, PoolResult>;
  private readonly dirs: Map<string, string>;

  constructor(options: ModelPoolOptions) {
    const where = 'ModelPool: options';
    checkOptions(options, where, POOL_OPTIONS);
    if (typeof options.models !== 'object' || options.models === null || Object.keys(options.models).length === 0) {
      throw new TypeError(`${where}.models: expected { name: directory, … } with at least one model, got ${show(options.models)}`);
    }
    this.dirs = new Map(Object.entries(options.models).map(([name, dir]) => {
      if (typeof dir !== 'string' || dir === '') throw new TypeError(`${where}.models.${name}: expected a saved model directory, got ${show(dir)}`);
      return [name, path.resolve(dir)];
    }));
    const threads = options.threads === undefined ? 2 : positiveInt(options.threads, `${where}.threads`);
    this.pool = new Piscina<PoolTask, PoolResult>({
      filename: workerFile,
      minThreads: threads,
      maxThreads: threads,
      maxQueue: options.maxQueue === undefined ? 1024 : positiveInt(options.maxQueue, `${where}.maxQueue`),
    });
  }

  get threads(): number {
    return this.pool.threads.length;
  }

  /** model.predict(x) of model `name` in a worker; `worker` tells which thread ran it and how often it loaded the model. */
  async predict(name: string, x: Tensor, options: PoolPredictOptions = {}): Promise<{ output: Tensor; worker: { threadId: number; loads: number } }> {
    const where = 'ModelPool.predict';
    checkOptions(options, `${where}: options`, PREDICT_OPTIONS);
    const dir = this.dirs.get(name);
    if (!dir) throw new TypeError(`${where}: no model ${show(name)}; the pool has ${[...this.dirs.keys()].join(', ')}`);
    if (!Tensor.isTensor(x)) throw new TypeError(`${where}: x must be a Tensor, got ${show(x)}`);
    const r = await this.pool.run({ dir, data: x.data, shape: [...x.shape], ...options });
    return { output: Tensor.from(r.data, r.shape), worker: { threadId: r.threadId, loads: r.loads } };
  }

  /** Waits for the running tasks and ends the workers. */
  async close(): Promise<void> {
    await this.pool.close();
  }
}
