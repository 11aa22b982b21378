/**
 * An inference service on node:http serving saved rnnkit models through the dynamic batcher:
 *
 *   node --import tsx examples/server/server.ts --model lm=examples/out/server/lm \
 *        --model classifier=examples/out/server/classifier [--port 8080] [--host 127.0.0.1] \
 *        [--mode batcher|direct|floor] [--window-ms 1] [--no-eager] [--max-batch 64] [--max-queue 1024] [--max-streams 10000] [--threads n] [--concurrency 1] [--no-batch-invariant]
 *
 * (examples/server/make-models.ts trains and saves the models.) --mode direct answers each request
 * with its own call (stream.stepAsync / model.predict) instead of the batcher: the load test's baseline.
 * --no-batch-invariant: EngineOptions.batchInvariant false — Dense layers run as one product over
 * the batch and float64 batches are not padded, so a stream's last bits may then depend on which
 * streams share its batch (the load test's tuned per-request baseline searches it).
 * --mode floor runs no model: every step, feed or predict is answered with zeros of the model's
 * output width, through the same HTTP, routing and JSON code; the load test measures with it what
 * this server can serve at all on the machine (the ceiling of both other modes).
 *
 * Routes (JSON bodies):
 *   POST /v1/models/:m/predict                {x}            one sequence from zero states → {output}
 *   POST /v1/models/:m/streams/:s/step        {x}            one step of stream s (opened on first use) → {output, steps}
 *   POST /v1/models/:m/streams/:s/feed        {x}            a chunk → {output, steps}
 *   GET  /v1/models/:m/streams/:s/state                      → {state: base64 of toBytes(), steps}
 *   PUT  /v1/models/:m/streams/:s/state       {state}        restore (or move a stream here from another process)
 *   DELETE /v1/models/:m/streams/:s
 *   POST /v1/models/:m/streams/:s/next-char   {text, top?}   feeds text (model with vocab.json) → the next character's top probabilities
 *   POST /v1/models/:m/classify               {text}         a sequence's class probabilities (vocab.json, labels.json)
 *   GET  /healthz                                            200 ok (503 while draining)
 *   GET  /metrics                                            Prometheus text format
 *   POST /admin/reset-loop-delay                             restarts the event-loop delay histogram (bench/loadtest.ts)
 *   x: features [steps][inputSize] (predict/feed) or [inputSize] (step), or ids. ?top=k returns the
 *   k largest outputs of the last step as [index, value] pairs instead of the whole output.
 *
 * SIGTERM/SIGINT: stop accepting connections, answer every request already received (the batcher
 * drains), then exit 0.
 */
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

import { Batcher, BatcherClosedError, ModelStream, QueueFullError, Tensor, loadModel, setNumThreads, type Sequential } from '../../lib/index.js';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { LatencySummary } from './latency.js';

export interface ServerOptions {
  models: Record<string, string>;
  port?: number;
  host?: string;
  mode?: 'batcher' | 'direct' | 'floor';
  windowMs?: number;
  /** Batcher eager dispatch when idle (default true; --no-eager: every request waits the window). */
  eager?: boolean;
  maxBatch?: number;
  maxQueue?: number;
  maxStreams?: number;
  /** Largest request body, bytes (default 1 MB). */
  maxBody?: number;
  /** Native kernel threads (setNumThreads; default: every core). Fewer leave a core to the event loop. */
  threads?: number;
  /** Batches in flight per model (Batcher concurrency; default 1). */
  concurrency?: number;
  /** See EngineOptions.batchInvariant (default true; --no-batch-invariant). */
  batchInvariant?: boolean;
}

/** A route's answer: status, payload (a string is sent as text/plain, anything else as JSON), route name (metrics). */
type Answer = [status: number, payload: unknown, route: string];
type Reply = Answer | Promise<Answer>;

/** JSON text made by hand (see topJson). */
class Json {
  constructor(readonly text: string) {}
}

/**
 * {"top": [[index, value], …], "steps"?: n} as JSON.stringify would write it, by hand: the answer to
 * every ?top= step, ~0.4 µs a request less than JSON.stringify of the object.
 */
function topJson(best: [number, number][], steps: number | undefined): Json {
  let text = '{"top":[';
  for (let j = 0; j < best.length; j++) {
    const v = best[j][1];
    text += (j === 0 ? '[' : ',[') + best[j][0] + ',' + (Number.isFinite(v) ? v : 'null') + ']';
  }
  return new Json(steps === undefined ? text + ']}' : text + '],"steps":' + steps + '}');
}

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

interface Served {
  name: string;
  model: Sequential;
  batcher: Batcher;
  streams: Map<string, ModelStream>;
  vocab?: Map<string, number>;
  chars?: string[];
  labels?: string[];
  /** --mode floor: the zeros every step is answered with. */
  zeros?: Tensor;
}

function readJson(file: string): unknown {
  return fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : undefined;
}

export async function startServer(options: ServerOptions): Promise<{ server: http.Server; url: string; shutdown: () => Promise<void> }> {
  const mode = options.mode ?? 'batcher';
  if (options.threads !== undefined) setNumThreads(options.threads);
  const maxStreams = options.maxStreams ?? 10_000;
  const maxBody = options.maxBody ?? 1 << 20;
  // prom-client with a registry of its own (not the global default one). Its default metrics
  // (collectDefaultMetrics) are not used: they would add a GC observer and a second event-loop
  // monitor, and have no peak RSS; the two process_* gauges below keep their names.
  const registry = new Registry();
  const served = new Map<string, Served>();
  let inFlight = 0;
  // Counted in plain fields per route and status (seriesOf below) and handed to prom-client at each
  // scrape: its Counter.inc hashes and validates the labels on every call (~1 µs a request).
  const requests = new Counter({
    name: 'rnnkit_requests_total', help: 'HTTP requests answered, by route and status code.', labelNames: ['route', 'code'] as const, registers: [registry],
    collect() {
      this.reset();
      for (const series of seriesOf.values()) this.inc({ route: series.route, code: series.code }, series.count);
    },
  });
  const rejected = new Counter({ name: 'rnnkit_requests_rejected_total', help: 'Requests refused because the batcher queue was full (HTTP 429).', registers: [registry] });
  // "Recent requests": quantiles over the last 30 to 60 s per route (two HdrHistograms a route,
  // latency.ts; 0 for a route without a request in the window).
  const latency = new LatencySummary({ name: 'rnnkit_request_duration_seconds', help: 'Request latency (quantiles over the last 30 to 60 s, per route).', label: 'route' });
  registry.registerMetric(latency as never);
  const batchSize = new Histogram({ name: 'rnnkit_batch_size', help: 'Requests per batched call.', labelNames: ['model'] as const, buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512], registers: [registry] });
  // Gauges of point-in-time values are read at each scrape (collect).
  new Gauge({
    name: 'rnnkit_queue_depth', help: 'Requests waiting in the batcher queue.', labelNames: ['model'] as const, registers: [registry],
    collect() { for (const s of served.values()) this.set({ model: s.name }, s.batcher.queueDepth); },
  });
  new Gauge({ name: 'rnnkit_requests_in_flight', help: 'HTTP requests received and not yet answered.', registers: [registry], collect() { this.set(inFlight); } });
  new Gauge({
    name: 'rnnkit_streams_open', help: 'Streams open.', labelNames: ['model'] as const, registers: [registry],
    collect() { for (const s of served.values()) this.set({ model: s.name }, s.streams.size); },
  });
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  new Gauge({
    name: 'rnnkit_event_loop_delay_seconds', help: 'Event-loop delay since start or the last /admin/reset-loop-delay (perf_hooks.monitorEventLoopDelay).', labelNames: ['quantile'] as const, registers: [registry],
    collect() {
      this.set({ quantile: '0.5' }, delay.percentile(50) / 1e9);
      this.set({ quantile: '0.99' }, delay.percentile(99) / 1e9);
      this.set({ quantile: '1' }, delay.max / 1e9);
    },
  });
  new Gauge({ name: 'process_resident_memory_bytes', help: 'Resident memory.', registers: [registry], collect() { this.set(process.memoryUsage().rss); } });
  new Gauge({ name: 'process_peak_resident_memory_bytes', help: 'Peak resident memory (getrusage maxrss).', registers: [registry], collect() { this.set(process.resourceUsage().maxRSS * 1024); } });

  for (const [name, dir] of Object.entries(options.models)) {
    const model = await loadModel(dir, { compile: false });
    batchSize.zero({ model: name });  // the series is there before the first batch
    const batches = batchSize.labels({ model: name });
    const batcher = new Batcher(model, {
      ...(options.windowMs !== undefined ? { windowMs: options.windowMs } : {}),
      ...(options.eager !== undefined ? { eager: options.eager } : {}),
      ...(options.maxBatch !== undefined ? { maxBatch: options.maxBatch } : {}),
      ...(options.maxQueue !== undefined ? { maxQueue: options.maxQueue } : {}),
      ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
      ...(options.batchInvariant !== undefined ? { batchInvariant: options.batchInvariant } : {}),
      onBatch: (info) => batches.observe(info.size),
    });
    const s: Served = { name, model, batcher, streams: new Map() };
    const chars = readJson(path.join(dir, 'vocab.json'));
    if (Array.isArray(chars)) {
      s.chars = chars as string[];
      s.vocab = new Map(s.chars.map((c, i) => [c, i]));
    }
    const labels = readJson(path.join(dir, 'labels.json'));
    if (Array.isArray(labels)) s.labels = labels as string[];
    served.set(name, s);
  }

  let draining = false;
  let serverErrors = 0;

  /**
   * Reads a JSON object body and hands it to `then` (or an HttpError to `fail`): callbacks rather
   * than a Promise, as the whole request path below (an await per stage costs a few µs a request).
   */
  const readBody = (req: http.IncomingMessage, then: (body: Record<string, unknown>) => void, fail: (e: unknown) => void): void => {
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      if (size > maxBody) return;  // answered already; the rest is read and dropped
      size += c.length;
      if (size > maxBody) fail(new HttpError(413, `body larger than ${maxBody} bytes`));
      else parts.push(c);
    });
    req.on('end', () => {
      if (size > maxBody) return;
      let v: unknown;
      try {
        v = size === 0 ? {} : JSON.parse((parts.length === 1 ? parts[0] : Buffer.concat(parts)).toString('utf8'));
        if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('expected a JSON object');
      } catch (e) {
        return fail(new HttpError(400, `bad JSON body: ${(e as Error).message}`));
      }
      then(v as Record<string, unknown>);
    });
    req.on('error', fail);
  };

  /** JSON x → what the stream engine takes: a Tensor [steps, inputSize] / [inputSize], or ids. */
  const input = (s: Served, x: unknown, single: boolean): Tensor | number[] | number => {
    const e = s.batcher.engine;
    if (e.inputKind === 'ids') {
      if (single && typeof x === 'number') return x;
      if (Array.isArray(x)) return x as number[];
      throw new HttpError(400, `x: expected ${single ? 'an id' : 'an array of ids'}`);
    }
    // One step's features go on as the parsed JSON list: the batcher checks and copies them once
    // (a Float32Array and a Tensor made here first cost ~1.5 µs a request more).
    if (single && Array.isArray(x)) return x as number[];
    const I = e.inputSize;
    const rows = single ? [x] : x;
    const bad = () => new HttpError(400, `x: expected ${single ? `${I} numbers` : `an array of steps, each ${I} numbers`}`);
    if (!Array.isArray(rows) || rows.length === 0) throw bad();
    const data = new Float32Array(rows.length * I);
    for (let t = 0; t < rows.length; t++) {
      const r: unknown = rows[t];
      if (!Array.isArray(r) || r.length !== I) throw bad();
      for (let j = 0; j < I; j++) {
        const v: unknown = r[j];
        if (typeof v !== 'number') throw new HttpError(400, `x[${t}][${j}]: expected a number`);
        data[t * I + j] = v;
      }
    }
    return single ? Tensor.from(data, [I]) : Tensor.from(data, [rows.length, I]);
  };

  const textIds = (s: Served, text: unknown): number[] => {
    if (!s.vocab) throw new HttpError(404, `model ${s.name} has no vocab.json`);
    if (typeof text !== 'string' || text.length === 0) throw new HttpError(400, 'text: expected a non-empty string');
    return [...text].map((c) => {
      const id = s.vocab!.get(c);
      if (id === undefined) throw new HttpError(400, `text: the character ${JSON.stringify(c)} is not in the model's vocabulary`);
      return id;
    });
  };

  const stream = (s: Served, id: string, create: boolean): ModelStream => {
    let st = s.streams.get(id);
    if (!st) {
      if (!create) throw new HttpError(404, `no stream ${id}`);
      if (s.streams.size >= maxStreams) throw new HttpError(429, `too many open streams (${maxStreams})`);
      st = s.batcher.openStream();
      s.streams.set(id, st);
    }
    return st;
  };

  const run = (kind: 'predict' | 'step' | 'feed', s: Served, st: ModelStream | null, x: Tensor | number[] | number, signal: AbortSignal | undefined): Promise<Tensor> => {
    if (mode === 'floor') {  // no model: zeros of the output's shape (see --mode floor above)
      const e = s.batcher.engine, W = e.outputWidth;
      const steps = kind === 'step' || !e.perStepOutput ? 1 : typeof x === 'number' ? 1 : Array.isArray(x) ? x.length : x.shape[0];
      if (kind === 'step' || !e.perStepOutput) return Promise.resolve((s.zeros ??= Tensor.from(new Float32Array(W), [W])));  // never written
      return Promise.resolve(Tensor.from(new Float32Array(steps * W), [steps, W]));
    }
    if (mode === 'batcher') {
      if (kind === 'predict') return s.batcher.predict(x as Tensor, signal ? { signal } : undefined);
      return kind === 'step' ? s.batcher.step(st!, x, signal ? { signal } : undefined) : s.batcher.feed(st!, x as Tensor, signal ? { signal } : undefined);
    }
    if (kind === 'predict') return s.batcher.openStream().feedAsync(x as Tensor);  // a stream of the batcher's engine: the same batchInvariant setting
    return kind === 'step' ? st!.stepAsync(x) : st!.feedAsync(x as Tensor);
  };

  const lastStep = (t: Tensor): Float32Array => {
    const W = t.shape[t.rank - 1];
    return t.data.subarray(t.size - W) as Float32Array;
  };
  /** The k largest entries as [index, value], largest first, ties in index order (one pass, insertion into k slots). */
  const top = (v: Float32Array | Float64Array, k: number): [number, number][] => {
    const idx = new Array<number>(k), val = new Array<number>(k);
    let n = 0, last = -Infinity;  // last: the smallest value kept, once k are kept
    for (let i = 0; i < v.length; i++) {
      const x = v[i];
      if (n === k) {
        if (x <= last) continue;
      } else n++;
      let j = n - 1;
      for (; j > 0 && val[j - 1] < x; j--) {
        idx[j] = idx[j - 1];
        val[j] = val[j - 1];
      }
      idx[j] = i;
      val[j] = x;
      if (n === k) last = val[k - 1];
    }
    const out = new Array<[number, number]>(n);
    for (let j = 0; j < n; j++) out[j] = [idx[j], val[j]];
    return out;
  };
  const softmax = (v: ArrayLike<number>): Float64Array => {
    let m = -Infinity;
    for (let i = 0; i < v.length; i++) m = Math.max(m, v[i]);
    const out = Float64Array.from(v, (x) => Math.exp(x - m));
    const z = out.reduce((a, b) => a + b, 0);
    return out.map((x) => x / z);
  };

  /** An output: its k largest entries of the last step with ?top=k, else the whole output and its shape. */
  const shape = (t: Tensor, k: number, steps?: number): Json | Record<string, unknown> => {
    if (k > 0) return topJson(top(lastStep(t), Math.min(k, t.shape[t.rank - 1])), steps);
    const o: Record<string, unknown> = { output: Array.from(t.data), shape: t.shape };
    if (steps !== undefined) o.steps = steps;
    return o;
  };

  /**
   * Routes a request: its answer, a promise of it, or — for a route with a JSON body — the function
   * that answers once the body is read.
   */
  const handle = (req: http.IncomingMessage, ex: Exchange): Reply | ((body: Record<string, unknown>) => Reply) => {
    // The path and query by hand: new URL() per request allocates more than the rest of the routing.
    const raw = req.url ?? '/', q = raw.indexOf('?');
    const pathname = q < 0 ? raw : raw.slice(0, q);
    const method = req.method;
    if (method === 'GET' && pathname === '/healthz') return draining ? [503, 'draining\n', 'healthz'] : [200, 'ok\n', 'healthz'];
    if (method === 'GET' && pathname === '/metrics') return registry.metrics().then((text): Answer => [200, text, 'metrics']);
    if (method === 'POST' && pathname === '/admin/reset-loop-delay') {
      delay.reset();  // the load test measures each run's event-loop delay from here
      return [200, 'ok\n', 'admin'];
    }
    const parts = pathname.split('/').filter(Boolean);
    if (parts[0] !== 'v1' || parts[1] !== 'models' || parts.length < 4) throw new HttpError(404, `no route ${method} ${pathname}`);
    const s = served.get(parts[2]);
    if (!s) throw new HttpError(404, `no model ${parts[2]}`);
    const topText = q < 0 ? null : new URLSearchParams(raw.slice(q + 1)).get('top');
    const k = topText === null ? 0 : Number(topText);
    if (!(Number.isInteger(k) && k >= 0)) throw new HttpError(400, `top: expected a whole number of outputs, got ${JSON.stringify(topText)}`);
    if (parts[3] === 'predict' && method === 'POST') {
      return (b) => run('predict', s, null, input(s, b.x, false), ex.signal()).then((out): Answer => [200, shape(out, k), 'predict']);
    }
    if (parts[3] === 'classify' && method === 'POST') {
      return (b) => run('predict', s, null, textIds(s, b.text), ex.signal()).then((t): Answer => {
        const out = lastStep(t);
        const labels = s.labels ?? Array.from(out, (_, i) => String(i));
        return [200, { probabilities: Object.fromEntries(labels.map((l, i) => [l, out[i]])) }, 'classify'];
      });
    }
    if (parts[3] === 'streams' && parts.length >= 5) {
      const id = parts[4], action = parts[5];
      if (action === undefined && method === 'DELETE') {
        const st = stream(s, id, false);
        st.close();
        s.streams.delete(id);
        return [200, { deleted: id }, 'delete'];
      }
      if (action === 'state' && method === 'GET') {
        const st = stream(s, id, false);
        return [200, { state: Buffer.from(st.toBytes()).toString('base64'), steps: st.steps }, 'state'];
      }
      if (action === 'state' && method === 'PUT') {
        return (b) => {
          if (typeof b.state !== 'string') throw new HttpError(400, 'state: expected the base64 of a stream state');
          const st = stream(s, id, true);
          st.restore(new Uint8Array(Buffer.from(b.state, 'base64')));
          return [200, { steps: st.steps }, 'state'];
        };
      }
      if ((action === 'step' || action === 'feed') && method === 'POST') {
        return (b) => {
          const st = stream(s, id, true);
          // A step is not withdrawn when its client leaves: it is one cheap step of a batch anyway.
          return run(action, s, st, input(s, b.x, action === 'step'), action === 'feed' ? ex.signal() : undefined).then((out): Answer => [200, shape(out, k, st.steps), action]);
        };
      }
      if (action === 'next-char' && method === 'POST') {
        return (b) => {
          const ids = textIds(s, b.text);
          const st = stream(s, id, true);
          return run('feed', s, st, ids, ex.signal()).then((out): Answer => {
            const p = softmax(lastStep(out));
            const n = typeof b.top === 'number' && Number.isInteger(b.top) && b.top > 0 ? Math.min(b.top, p.length) : 5;
            return [200, { next: top(p, n).map(([i, v]) => ({ char: s.chars![i], p: v })), steps: st.steps }, 'next-char'];
          });
        };
      }
    }
    throw new HttpError(404, `no route ${method} ${pathname}`);
  };

  /** Each route and status: its request count and latency series, looked up once. */
  const seriesOf = new Map<string, { route: string; code: string; count: number; latency: ReturnType<LatencySummary['series']> }>();

  /**
   * One request and its answer. A class rather than closures made per request: nothing here is a
   * named function created per request (under tsx, which keeps function names, each of those costs
   * an Object.defineProperty, ~1 µs).
   */
  class Exchange {
    private readonly t0 = performance.now();
    private ctl: AbortController | undefined;
    constructor(private readonly req: http.IncomingMessage, private readonly res: http.ServerResponse) {
      inFlight++;
      try {
        const r = handle(req, this);
        if (typeof r !== 'function') this.settle(r);
        else readBody(req, (b) => this.run(r, b), (e) => this.fail(e));
      } catch (e) {
        this.fail(e);
      }
    }

    /**
     * The AbortSignal that withdraws a waiting request when its client goes away, made only for the
     * routes that pass one (predict, feed: an AbortController per request costs as much as the rest
     * of a one-step request's routing).
     */
    signal(): AbortSignal {
      if (!this.ctl) {
        const ctl = (this.ctl = new AbortController()), res = this.res;
        if (res.destroyed) ctl.abort();
        else res.on('close', () => { if (!res.writableFinished) ctl.abort(); });
      }
      return this.ctl.signal;
    }

    private run(answer: (body: Record<string, unknown>) => Reply, body: Record<string, unknown>): void {
      try {
        this.settle(answer(body));
      } catch (e) {
        this.fail(e);
      }
    }

    private settle(r: Reply): void {
      if (r instanceof Promise) r.then((a) => this.finish(a[0], a[1], a[2]), (e) => this.fail(e));
      else this.finish(r[0], r[1], r[2]);
    }

    private fail(e: unknown): void {
      let status = 500;
      if (e instanceof HttpError) status = e.status;
      else if (e instanceof QueueFullError) {
        status = 429;
        rejected.inc();
      } else if (e instanceof BatcherClosedError) status = 503;
      else if (e instanceof TypeError || e instanceof RangeError) status = 400;
      else if ((e as Error)?.name === 'AbortError') status = 499;
      else if (e instanceof Error && /the stream is busy/.test(e.message)) status = 409;  // a request of this stream is running
      if (status === 500 && serverErrors++ < 5) console.error(`500 on ${this.req.method} ${this.req.url}: ${(e as Error)?.stack ?? String(e)}`);
      this.finish(status, { error: (e as Error)?.message ?? String(e) }, 'error');
    }

    private finish(status: number, payload: unknown, route: string): void {
      inFlight--;
      const key = `${route} ${status}`;
      let series = seriesOf.get(key);
      if (!series) seriesOf.set(key, (series = { route, code: String(status), count: 0, latency: latency.series(route) }));
      series.count++;
      series.latency.observe((performance.now() - this.t0) / 1000);
      const res = this.res;
      if (res.destroyed) return;
      const plain = typeof payload === 'string';
      const text = plain ? payload : payload instanceof Json ? payload.text : JSON.stringify(payload);
      // Headers as a flat [name, value, …] list: node:http takes it without walking an object.
      const headers = ['content-type', plain ? (route === 'metrics' ? registry.contentType : 'text/plain; charset=utf-8') : 'application/json',
        'content-length', String(Buffer.byteLength(text))];
      if (draining) headers.push('connection', 'close');
      res.writeHead(status, headers);
      res.end(text);
      if (draining && inFlight === 0) server.closeIdleConnections();
    }
  }
  const server = http.createServer((req, res) => void new Exchange(req, res));
  server.keepAliveTimeout = 5000;

  await new Promise<void>((resolve) => server.listen(options.port ?? 8080, options.host ?? '127.0.0.1', resolve));
  const address = server.address() as { port: number; address: string };
  const url = `http://${address.address}:${address.port}`;

  let closing: Promise<void> | undefined;
  const shutdown = (): Promise<void> => (closing ??= (async () => {
    draining = true;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));  // no new connections
    server.closeIdleConnections();
    // Every request already received gets its answer: the batchers drain their queues.
    await Promise.all([...served.values()].map((s) => s.batcher.close()));
    while (inFlight > 0) await new Promise((r) => setTimeout(r, 5));
    server.closeIdleConnections();
    await closed;
    delay.disable();
  })());
  return { server, url, shutdown };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', multiple: true }, port: { type: 'string' }, host: { type: 'string' }, mode: { type: 'string' },
      'window-ms': { type: 'string' }, 'max-batch': { type: 'string' }, 'max-queue': { type: 'string' }, 'max-streams': { type: 'string' },
      threads: { type: 'string' }, concurrency: { type: 'string' }, 'no-eager': { type: 'boolean' },
      'no-batch-invariant': { type: 'boolean' },
    },
  });
  const models: Record<string, string> = {};
  for (const m of values.model ?? []) {
    const i = m.indexOf('=');
    if (i < 1) throw new Error(`--model ${m}: expected name=directory`);
    models[m.slice(0, i)] = m.slice(i + 1);
  }
  if (Object.keys(models).length === 0) throw new Error('give at least one --model name=directory (examples/server/make-models.ts saves some)');
  const mode = values.mode ?? 'batcher';
  if (mode !== 'batcher' && mode !== 'direct' && mode !== 'floor') throw new Error(`--mode: expected batcher, direct or floor, got ${mode}`);
  const opt = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  const { url, shutdown } = await startServer({
    models, mode, port: opt(values.port) ?? 8080, host: values.host ?? '127.0.0.1',
    ...(values['window-ms'] !== undefined ? { windowMs: opt(values['window-ms'])! } : {}),
    ...(values['no-eager'] ? { eager: false } : {}),
    ...(values['no-batch-invariant'] ? { batchInvariant: false } : {}),
    ...(values['max-batch'] !== undefined ? { maxBatch: opt(values['max-batch'])! } : {}),
    ...(values['max-queue'] !== undefined ? { maxQueue: opt(values['max-queue'])! } : {}),
    ...(values['max-streams'] !== undefined ? { maxStreams: opt(values['max-streams'])! } : {}),
    ...(values.threads !== undefined ? { threads: opt(values.threads)! } : {}),
    ...(values.concurrency !== undefined ? { concurrency: opt(values.concurrency)! } : {}),
  });
  console.log(`listening on ${url} (${mode}; models ${Object.keys(models).join(', ')})`);
  const stop = (signal: string) => {
    console.log(`${signal}: draining`);
    shutdown().then(() => {
      console.log('drained; exiting');
      process.exit(0);
    }, (e) => {
      console.error(e);
      process.exit(1);
    });
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}
