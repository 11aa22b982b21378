// Dynamic batching: predict/step/feed requests from many callers are gathered for at most
// `windowMs` (or until `maxBatch` are waiting), run as one batched call on the native thread pool
// (StreamEngine.runAsync: one native call per recurrent layer, the variable-length path when the
// requests differ in length) and answered one by one. Each request is checked when it arrives, so
// a bad one fails alone and never reaches a batch; an AbortSignal withdraws a waiting request; the
// queue is bounded (QueueFullError); close() stops accepting and drains what was accepted.
import { Tensor, type TensorData } from '../tensor.js';
import { checkOptions, flag, numberIn, optionNames, positiveInt, show } from '../options.js';
import type { Sequential } from '../model/sequential.js';
import { engineFor, ModelStream, type EngineEntry, type StreamEngine } from './stream.js';

/** The queue holds maxQueue waiting requests already: this one is refused (retry later, or shed load). */
export class QueueFullError extends Error {
  readonly code = 'RNNKIT_QUEUE_FULL';
  constructor(readonly maxQueue: number) {
    super(`Batcher: the queue is full (${maxQueue} requests waiting); the request was not accepted`);
    this.name = 'QueueFullError';
  }
}

/** The batcher was closed: it takes no new request (those accepted before still complete). */
export class BatcherClosedError extends Error {
  readonly code = 'RNNKIT_BATCHER_CLOSED';
  constructor() {
    super('Batcher: closed; no new requests are accepted');
    this.name = 'BatcherClosedError';
  }
}

/** A waiting request withdrawn by its AbortSignal (when the signal gives no reason of its own). */
export class RequestAbortedError extends Error {
  readonly code = 'ABORT_ERR';
  constructor() {
    super('Batcher: the request was aborted before it ran');
    this.name = 'AbortError';
  }
}

export interface BatchInfo {
  /** Requests in the batch. */
  size: number;
  /** Steps of the batch (its longest request). */
  steps: number;
  /** Time the batched call took, in milliseconds. */
  ms: number;
  /** Requests still waiting when it finished. */
  queueDepth: number;
}

export interface BatcherOptions {
  /**
   * How long the first waiting request waits for others while a batch is running, in ms (default 1;
   * 0: the next turn of the event loop). See `eager` for an idle batcher.
   */
  windowMs?: number;
  /**
   * When no batch is running, run the waiting requests at the next turn of the event loop instead
   * of after the window (default true): light traffic is not delayed by the window, and requests
   * that arrive together (one read of many sockets) still share a batch. Under load the batches
   * form while earlier ones run. false: always wait the window.
   */
  eager?: boolean;
  /** Requests per batch at most (default 64); a full batch runs at once. */
  maxBatch?: number;
  /** Waiting requests at most (default 1024); more are refused with QueueFullError. */
  maxQueue?: number;
  /** Batches in flight at once (default 1). */
  concurrency?: number;
  /** See EngineOptions.batchInvariant (default true). */
  batchInvariant?: boolean;
  /** Called after every batch (metrics). */
  onBatch?: (info: BatchInfo) => void;
  /**
   * Requests answered per turn of the event loop (default 16): a large batch is answered over
   * several turns, so the work its callers do with the answers does not hold the loop for long.
   */
  answerChunk?: number;
}

export interface RequestOptions {
  /** Withdraws the request while it waits (a request already in a running batch completes). */
  signal?: AbortSignal;
}

export interface BatcherStats {
  queueDepth: number;
  inFlight: number;
  accepted: number;
  completed: number;
  failed: number;
  aborted: number;
  /** Refused because the queue was full. */
  rejected: number;
  batches: number;
}

const BATCHER_OPTIONS = optionNames<BatcherOptions>({ windowMs: true, eager: true, maxBatch: true, maxQueue: true, concurrency: true, batchInvariant: true, onBatch: true, answerChunk: true });
const REQUEST_OPTIONS = optionNames<RequestOptions>({ signal: true });

interface Request {
  stream: ModelStream | null;
  data: TensorData;
  steps: number;
  single: boolean;
  resolve: (t: Tensor) => void;
  reject: (e: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

export class Batcher {
  readonly windowMs: number;
  readonly maxBatch: number;
  readonly maxQueue: number;
  readonly concurrency: number;
  readonly answerChunk: number;
  readonly eager: boolean;
  readonly engine: StreamEngine;
  private readonly onBatch: ((info: BatchInfo) => void) | undefined;
  private queue: Request[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private immediate = false;
  private inFlight = 0;
  private closed = false;
  private drained: (() => void)[] = [];
  private readonly counts = { accepted: 0, completed: 0, failed: 0, aborted: 0, rejected: 0, batches: 0 };

  constructor(readonly model: Sequential, options: BatcherOptions = {}) {
    const where = 'Batcher: options';
    checkOptions(options, where, BATCHER_OPTIONS);
    this.windowMs = options.windowMs === undefined ? 1 : numberIn(options.windowMs, `${where}.windowMs`, 0, 60_000);
    this.maxBatch = options.maxBatch === undefined ? 64 : positiveInt(options.maxBatch, `${where}.maxBatch`);
    this.maxQueue = options.maxQueue === undefined ? 1024 : positiveInt(options.maxQueue, `${where}.maxQueue`);
    this.concurrency = options.concurrency === undefined ? 1 : positiveInt(options.concurrency, `${where}.concurrency`);
    this.answerChunk = options.answerChunk === undefined ? 16 : positiveInt(options.answerChunk, `${where}.answerChunk`);
    if (options.onBatch !== undefined && typeof options.onBatch !== 'function') throw new TypeError(`${where}.onBatch: expected a function, got ${show(options.onBatch)}`);
    this.onBatch = options.onBatch;
    this.eager = flag(options.eager, `${where}.eager`, true);
    this.engine = engineFor(model, { batchInvariant: flag(options.batchInvariant, `${where}.batchInvariant`, true) });
  }

  /** A stream of this batcher's model (and batchInvariant setting), for step/feed. */
  openStream(): ModelStream {
    return new ModelStream(this.engine);
  }

  /** The model's output for one sequence from zero states: [steps, inputSize] (or ids [steps]) → as ModelStream.feed. */
  predict(x: Tensor | ArrayLike<number>, options?: RequestOptions): Promise<Tensor> {
    return this.enqueue(null, x, false, options, 'Batcher.predict');
  }

  /** stream.step(x_t), batched with other requests. */
  step(stream: ModelStream, x: Tensor | ArrayLike<number> | number, options?: RequestOptions): Promise<Tensor> {
    return this.enqueue(stream, x, true, options, 'Batcher.step');
  }

  /** stream.feed(chunk), batched with other requests. */
  feed(stream: ModelStream, chunk: Tensor | ArrayLike<number>, options?: RequestOptions): Promise<Tensor> {
    return this.enqueue(stream, chunk, false, options, 'Batcher.feed');
  }

  get queueDepth(): number {
    return this.queue.length;
  }

  stats(): BatcherStats {
    return { queueDepth: this.queue.length, inFlight: this.inFlight, ...this.counts };
  }

  /** Stops accepting requests and resolves once every accepted one has been answered. */
  close(): Promise<void> {
    this.closed = true;
    this.schedule(true);
    if (this.queue.length === 0 && this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.drained.push(resolve));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private enqueue(stream: ModelStream | null, x: unknown, single: boolean, options: RequestOptions | undefined, where: string): Promise<Tensor> {
    try {
      if (this.closed) throw new BatcherClosedError();
      if (options !== undefined) checkOptions(options, `${where}: options`, REQUEST_OPTIONS);
      const signal = options?.signal;
      if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError(`${where}: options.signal must be an AbortSignal, got ${show(signal)}`);
      if (stream !== null) {
        if (!(stream instanceof ModelStream)) throw new TypeError(`${where}: stream must be a ModelStream (batcher.openStream()), got ${show(stream)}`);
        if (stream.engine !== this.engine) throw new TypeError(`${where}: the stream belongs to another model (or batchInvariant setting); open it with batcher.openStream()`);
      }
      const { data, steps } = this.engine.checkChunk(x, where, single);
      if (signal?.aborted) {
        this.counts.aborted++;
        return Promise.reject(signal.reason ?? new RequestAbortedError());
      }
      if (this.queue.length >= this.maxQueue) {
        this.counts.rejected++;
        throw new QueueFullError(this.maxQueue);
      }
      return new Promise<Tensor>((resolve, reject) => {
        const req: Request = { stream, data, steps, single, resolve, reject, signal, onAbort: undefined };
        if (signal) {
          req.onAbort = () => {
            const i = this.queue.indexOf(req);
            if (i < 0) return;  // already running: it completes
            this.queue.splice(i, 1);
            this.counts.aborted++;
            reject(signal.reason ?? new RequestAbortedError());
            this.checkDrained();
          };
          signal.addEventListener('abort', req.onAbort, { once: true });
        }
        this.queue.push(req);
        this.counts.accepted++;
        this.schedule(this.queue.length >= this.maxBatch);
      });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Runs a batch now (full, or closing) or after the window. */
  private schedule(now: boolean): void {
    if (this.queue.length === 0 || this.inFlight >= this.concurrency) return;
    if (now || this.closed || this.windowMs === 0 || (this.eager && this.inFlight === 0)) {
      if (this.timer !== undefined) {
        clearTimeout(this.timer);
        this.timer = undefined;
      }
      if (!this.immediate) {
        this.immediate = true;
        setImmediate(() => {
          this.immediate = false;
          this.dispatch();
        });
      }
      return;
    }
    if (this.timer === undefined && !this.immediate) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.dispatch();
      }, this.windowMs);
    }
  }

  private dispatch(): void {
    while (this.inFlight < this.concurrency && this.queue.length > 0) {
      const batch: Request[] = [], rest: Request[] = [];
      const inBatch = new Set<ModelStream>();
      for (const r of this.queue) {
        // One request per stream per batch, in order; a stream another call holds waits.
        if (batch.length >= this.maxBatch || (r.stream && (inBatch.has(r.stream) || r.stream.busy))) {
          if (r.stream?.busy && !inBatch.has(r.stream)) inBatch.add(r.stream);  // keep its later requests behind it
          rest.push(r);
          continue;
        }
        if (r.stream) inBatch.add(r.stream);
        batch.push(r);
      }
      if (batch.length === 0) return;  // every waiting request's stream is busy; retried when a batch ends
      this.queue = rest;  // one pass: splicing each taken request out is quadratic in the queue
      for (const r of batch) if (r.stream) r.stream.busy = true;
      for (const r of batch) if (r.signal && r.onAbort) r.signal.removeEventListener('abort', r.onAbort);
      this.inFlight++;
      void this.runBatch(batch);
    }
  }

  private async runBatch(batch: Request[]): Promise<void> {
    const t0 = performance.now();
    const entries = batch.map((r): EngineEntry => ({ state: r.stream?.state ?? null, x: r.data, steps: r.steps, stateOut: r.stream?.state ?? null }));
    let outs: (TensorData | Error)[];
    try {
      outs = await this.engine.runAsync(entries);
    } catch {
      // Unexpected (each request was checked): run them one by one so only the failing one fails.
      outs = [];
      for (const e of entries) {
        try {
          outs.push((await this.engine.runAsync([e]))[0]);
        } catch (err) {
          outs.push(err instanceof Error ? err : new Error(String(err)));
        }
      }
    }
    const steps = entries.reduce((a, e) => Math.max(a, e.steps), 0);
    this.counts.batches++;
    // The states are final: free the streams now, then answer a chunk per turn of the event loop.
    for (const r of batch) if (r.stream) r.stream.busy = false;
    for (let i = 0; i < batch.length; i++) {
      if (i > 0 && i % this.answerChunk === 0) await new Promise((resolve) => setImmediate(resolve));
      const r = batch[i], o = outs[i];
      if (o instanceof Error) {
        this.counts.failed++;
        r.reject(o);
        continue;
      }
      if (r.stream) r.stream.steps += r.steps;
      this.counts.completed++;
      const W = this.engine.outputWidth;
      r.resolve(r.single || !this.engine.perStepOutput ? Tensor.from(o, [W]) : Tensor.from(o, [r.steps, W]));
    }
    this.inFlight--;
    try {
      this.onBatch?.({ size: batch.length, steps, ms: performance.now() - t0, queueDepth: this.queue.length });
    } finally {
      // Requests that arrived while the batch ran have waited already: run them now.
      this.schedule(true);
      this.checkDrained();
    }
  }

  private checkDrained(): void {
    if (this.closed && this.queue.length === 0 && this.inFlight === 0) {
      const waiting = this.drained;
      this.drained = [];
      for (const f of waiting) f();
    }
  }
}
