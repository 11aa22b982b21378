/**
 * The cases of test/serve.test.ts, one per child process (native calls, the thread pool):
 *
 *   node --import tsx test/helpers/serve-body.ts <case>
 *
 * streams   streams against model.predict (the whole-sequence path, to 2e-6), feed against steps,
 *           stepStreams batches of random subsets against each stream stepped alone (bit-identical),
 *           snapshot/restore/fork/toBytes/fromBytes continuations (bit-identical), refusals
 * move      a stream's toBytes() continued in another process that loads the saved model (bit-identical)
 * batcher   concurrent predict/step/feed requests through a Batcher with aborted, failing and
 *           over-quota requests mixed in: every accepted result bit-identical to it run alone
 * property  fast-check: random mixes of requests, aborts and lengths, results bit-identical to alone
 * queue     the queue bound: maxQueue waiting at most, the rest refused with QueueFullError
 * shutdown  close() while requests wait and run: every accepted one answered, later ones refused
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';

import {
  Batcher, BatcherClosedError, Bidirectional, Dense, Embedding, GRU, LSTM, Masking, ModelStream, QueueFullError, Sequential, SimpleRNN, Tensor,
  TimeDistributed, loadModel, stepStreams, type TensorData,
} from '../../lib/index.js';

const which = process.argv[2];

/** A small deterministic generator (inputs only). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function sameBits(a: TensorData, b: TensorData, what: string): void {
  assert.equal(a.length, b.length, `${what}: length ${a.length} vs ${b.length}`);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) assert.fail(`${what}: entry ${i} is ${a[i]}, alone ${b[i]} (bit-identical expected)`);
}

interface Case {
  name: string;
  model: Sequential;
  ids?: number;       // Embedding inputDim
  inputSize?: number;
}

function models(): Case[] {
  const cases: Case[] = [];
  const lm = new Sequential([
    new Embedding({ inputDim: 30, outputDim: 12 }),
    new LSTM({ units: 48, returnSequences: true, numLayers: 2 }),
    new TimeDistributed(new Dense({ units: 30, activation: 'softmax' })),
  ], { seed: 1, inputShape: [null] });
  cases.push({ name: 'Embedding → LSTM×2 → TimeDistributed(Dense softmax)', model: lm, ids: 30 });
  const cls = new Sequential([
    new GRU({ units: 40, returnSequences: true }),
    new SimpleRNN({ units: 20 }),
    new Dense({ units: 5, activation: 'softmax' }),
  ], { seed: 2, inputShape: [null, 7] });
  cases.push({ name: 'GRU → SimpleRNN (last output) → Dense softmax', model: cls, inputSize: 7 });
  const proj = new Sequential([new LSTM({ units: 300, projSize: 40, returnSequences: true, peepholes: true })], { seed: 3, inputShape: [null, 9] });
  cases.push({ name: 'LSTMP(300 → 40) with peepholes (inner dimension > 256)', model: proj, inputSize: 9 });
  for (const c of cases) c.model.build();
  return cases;
}

function randomInput(c: Case, r: () => number, steps: number): { tensor: Tensor; list: number[] | Tensor } {
  if (c.ids) {
    const ids = Array.from({ length: steps }, () => Math.floor(r() * c.ids!));
    return { tensor: Tensor.from(Float32Array.from(ids), [1, steps]), list: ids };
  }
  const data = Float32Array.from({ length: steps * c.inputSize! }, () => r() * 2 - 1);
  return { tensor: Tensor.from(data, [1, steps, c.inputSize!]), list: Tensor.from(data, [steps, c.inputSize!]) };
}

/** One step of an input made by randomInput. */
function stepOf(c: Case, list: number[] | Tensor, t: number): number | Tensor {
  if (Array.isArray(list)) return list[t];
  const I = c.inputSize!;
  return Tensor.from(list.data.slice(t * I, (t + 1) * I), [I]);
}

async function streams(): Promise<string> {
  const r = rng(11);
  let checked = 0;
  for (const c of models()) {
    const W = c.model.openStream().engine.outputWidth;
    const perStep = c.model.openStream().engine.perStepOutput;
    // 1. A stream stepped through a sequence gives what predict gives for that sequence.
    const T = 9;
    const { tensor, list } = randomInput(c, r, T);
    const ref = await c.model.predict(tensor);
    const s = c.model.openStream();
    const stepped: TensorData[] = [];
    for (let t = 0; t < T; t++) stepped.push(s.step(stepOf(c, list, t)).data);
    const last = stepped[T - 1];
    const want = perStep ? ref.data.subarray((T - 1) * W, T * W) : ref.data;
    for (let j = 0; j < W; j++) assert.ok(Math.abs(last[j] - want[j]) <= 2e-6 * (1 + Math.abs(want[j])), `${c.name}: stream step ${T - 1} [${j}] = ${last[j]}, predict ${want[j]}`);
    if (perStep) for (let t = 0; t < T; t++) for (let j = 0; j < W; j++) {
      const p = ref.data[t * W + j];
      assert.ok(Math.abs(stepped[t][j] - p) <= 2e-6 * (1 + Math.abs(p)), `${c.name}: stream step ${t} [${j}] = ${stepped[t][j]}, predict ${p}`);
    }
    // 2. feed(whole chunk) is bit-identical to the steps (async too), and feeding in two chunks.
    const fed = c.model.openStream().feed(list);
    sameBits(fed.data, perStep ? concat(stepped) : last, `${c.name}: feed vs steps`);
    const s2 = c.model.openStream();
    const firstPart = Array.isArray(list) ? list.slice(0, 4) : Tensor.from(list.data.slice(0, 4 * c.inputSize!), [4, c.inputSize!]);
    const rest = Array.isArray(list) ? list.slice(4) : Tensor.from(list.data.slice(4 * c.inputSize!), [T - 4, c.inputSize!]);
    await s2.feedAsync(firstPart);
    const tail = await s2.feedAsync(rest);
    sameBits(tail.data, perStep ? concat(stepped.slice(4)) : last, `${c.name}: two async chunks vs steps`);
    assert.equal(s2.steps, T);
    // 3. stepStreams over random subsets: each stream bit-identical to a twin stepped alone.
    const n = 23;
    const batched = Array.from({ length: n }, () => c.model.openStream());
    const alone = Array.from({ length: n }, () => c.model.openStream());
    for (let t = 0; t < 12; t++) {
      const idx = Array.from({ length: n }, (_, i) => i).filter(() => r() < 0.6);
      if (idx.length === 0) continue;
      const chunks = r() < 0.5;
      const inputs = idx.map(() => randomInput(c, r, chunks ? 1 + Math.floor(r() * 5) : 1).list);
      const outs = stepStreams(idx.map((i) => batched[i]), inputs.map((l) => (chunks ? l : stepOf(c, l, 0))), { chunks });
      idx.forEach((i, q) => {
        const own = chunks ? alone[i].feed(inputs[q]) : alone[i].step(stepOf(c, inputs[q], 0));
        sameBits(outs[q].data, own.data, `${c.name}: batched step ${t}, stream ${i} (batch of ${idx.length})`);
        checked++;
      });
    }
    for (let i = 0; i < n; i++) sameBits(batched[i].snapshot().state, alone[i].snapshot().state, `${c.name}: state of stream ${i}`);
    // 4. snapshot/restore, fork, toBytes/fromBytes: the same continuation.
    const base = batched[0];
    const snap = base.snapshot(), bytes = base.toBytes(), fork = base.fork();
    const next = randomInput(c, r, 6).list;
    const a = base.feed(next).data;
    base.restore(snap);
    sameBits(base.feed(next).data, a, `${c.name}: restore(snapshot)`);
    sameBits(fork.feed(next).data, a, `${c.name}: fork`);
    sameBits(ModelStream.fromBytes(c.model, bytes).feed(next).data, a, `${c.name}: fromBytes(toBytes())`);
    sameBits(c.model.openStream({ from: bytes }).feed(next).data, a, `${c.name}: openStream({ from: bytes })`);
    base.restore(bytes);
    sameBits(base.feed(next).data, a, `${c.name}: restore(bytes)`);
    // 5. Refusals: bad inputs, another model's state, busy streams.
    const bad = c.ids ? [-1, 1.5, c.ids] : [Tensor.from(new Float32Array(c.inputSize! + 1), [c.inputSize! + 1]), Tensor.from(new Float32Array(c.inputSize!).fill(NaN), [c.inputSize!])];
    for (const b of bad) assert.throws(() => c.model.openStream().step(b as never), RangeError, `${c.name}: step(${String(b)})`);
    assert.throws(() => c.model.openStream().step('x' as never), TypeError);
    const busy = c.model.openStream();
    const p = busy.stepAsync(stepOf(c, list, 0));
    assert.throws(() => busy.step(stepOf(c, list, 0)), /busy/);
    await p;
  }
  const [lm, cls] = models();
  assert.throws(() => lm.model.openStream().restore(cls.model.openStream().snapshot()), /another state layout/);
  assert.throws(() => ModelStream.fromBytes(lm.model, cls.model.openStream().toBytes()), /layout/);
  const corrupt = lm.model.openStream().toBytes();
  assert.throws(() => ModelStream.fromBytes(lm.model, corrupt.subarray(0, corrupt.length - 4)), /expected \d+ bytes/);
  assert.throws(() => lm.model.openStream({ bogus: 1 } as never), /options\.bogus: unknown option/);
  const bi = new Sequential([new Bidirectional(new LSTM({ units: 4, returnSequences: true }))], { inputShape: [null, 3] });
  bi.build();
  assert.throws(() => bi.openStream(), /bidirectional layer needs the whole sequence/);
  const bi2 = new Sequential([new GRU({ units: 4, bidirectional: true })], { inputShape: [null, 3] });
  bi2.build();
  assert.throws(() => bi2.openStream(), /bidirectional/);
  const back = new Sequential([new LSTM({ units: 4, goBackwards: true })], { inputShape: [null, 3] });
  back.build();
  assert.throws(() => back.openStream(), /goBackwards/);
  const masked = new Sequential([new Masking(), new LSTM({ units: 4 })], { inputShape: [null, 3] });
  masked.build();
  assert.throws(() => masked.openStream(), /masks steps/);
  return `${checked} batched stream calls bit-identical to alone; predict agreement, feed/steps, snapshot/restore/fork/bytes, refusals`;
}

function concat(parts: TensorData[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

async function move(): Promise<string> {
  const [lm] = models();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-stream-'));
  try {
    await lm.model.save(dir);
    const s = lm.model.openStream();
    s.feed([3, 1, 4, 1, 5, 9, 2, 6]);
    fs.writeFileSync(path.join(dir, 'state.bin'), s.toBytes());
    const want = s.feed([5, 3, 5]).data;
    const res = spawnSync(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'serve-body.ts'), 'move-child', dir], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(res.status, 0, res.stderr);
    const got = Float32Array.from(JSON.parse(res.stdout.trim().split('\n').pop()!) as number[]);
    sameBits(got, want, 'the continuation in another process');
    return `toBytes() (${fs.statSync(path.join(dir, 'state.bin')).size} bytes) continued in another process: ${want.length} outputs bit-identical`;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function moveChild(dir: string): Promise<void> {
  const model = await loadModel(dir);
  const s = ModelStream.fromBytes(model, new Uint8Array(fs.readFileSync(path.join(dir, 'state.bin'))));
  console.log(JSON.stringify(Array.from(s.feed([5, 3, 5]).data)));
}

type Op =
  | { kind: 'predict'; steps: number; seed: number }
  | { kind: 'step' | 'feed'; stream: number; steps: number; seed: number }
  | { kind: 'bad' }
  | { kind: 'abort'; steps: number; seed: number };

/**
 * Submits ops concurrently to a batcher and checks each result against the same request run alone:
 * predict → a fresh stream's feed; step/feed → a twin stream advanced alone in the same order.
 */
async function runOps(c: Case, ops: Op[], streamsCount: number, opts: { maxBatch: number; windowMs: number; maxQueue?: number }): Promise<{ batches: number; maxSize: number; ok: number; rejected: number }> {
  let maxSize = 0;
  const b = new Batcher(c.model, { ...opts, onBatch: (i) => { maxSize = Math.max(maxSize, i.size); } });
  const streamsB = Array.from({ length: streamsCount }, () => b.openStream());
  const twins = Array.from({ length: streamsCount }, () => c.model.openStream());
  const pending: { op: Op; p: Promise<Tensor>; input?: number[] | Tensor; ctl?: AbortController }[] = [];
  for (const op of ops) {
    if (op.kind === 'bad') {
      pending.push({ op, p: b.predict(c.ids ? [c.ids + 5] : Tensor.from(new Float32Array(3), [1, 3])) });
      continue;
    }
    const input = randomInput(c, rng(op.seed), op.steps).list;
    if (op.kind === 'predict') pending.push({ op, input, p: b.predict(input) });
    else if (op.kind === 'abort') {
      const ctl = new AbortController();
      pending.push({ op, input, ctl, p: b.predict(input, { signal: ctl.signal }) });
    } else if (op.kind === 'step') pending.push({ op, input, p: b.step(streamsB[op.stream], stepOf(c, input, 0)) });
    else pending.push({ op, input, p: b.feed(streamsB[op.stream], input) });
  }
  // Abort the abortable ones now: they are still waiting (the window has not passed; the event loop has not turned).
  for (const q of pending) q.ctl?.abort();
  const settled = await Promise.allSettled(pending.map((q) => q.p));
  let ok = 0, rejected = 0;
  settled.forEach((s, i) => {
    const { op, input } = pending[i];
    if (s.status === 'rejected' && s.reason instanceof QueueFullError) {
      rejected++;
      return;
    }
    if (op.kind === 'bad') {
      assert.equal(s.status, 'rejected', 'a bad request must fail');
      assert.ok(s.status === 'rejected' && (s.reason instanceof RangeError || s.reason instanceof TypeError), `bad request: ${String((s as PromiseRejectedResult).reason)}`);
      return;
    }
    if (op.kind === 'abort') {
      assert.equal(s.status, 'rejected', 'an aborted request must not run');
      assert.equal((s as PromiseRejectedResult).reason.name, 'AbortError');
      return;
    }
    if (s.status === 'rejected') throw s.reason;
    let want: TensorData;
    if (op.kind === 'predict') want = c.model.openStream().feed(input!).data;
    else if (op.kind === 'step') want = twins[op.stream].step(stepOf(c, input!, 0)).data;
    else want = twins[op.stream].feed(input!).data;
    sameBits(s.value.data, want, `${c.name}: request ${i} (${op.kind}) vs alone`);
    ok++;
  });
  // Streams whose requests were refused for quota skipped them; the others match their twins.
  await b.close();
  const st = b.stats();
  assert.equal(st.queueDepth, 0);
  assert.equal(st.inFlight, 0);
  assert.equal(st.completed, ok);
  return { batches: st.batches, maxSize, ok, rejected };
}

function mixOps(r: () => number, n: number, streamsCount: number): Op[] {
  const ops: Op[] = [];
  const used = new Set<number>();
  for (let i = 0; i < n; i++) {
    const u = r(), seed = Math.floor(r() * 1e9);
    if (u < 0.3) ops.push({ kind: 'predict', steps: 1 + Math.floor(r() * 12), seed });
    else if (u < 0.8) {
      const stream = Math.floor(r() * streamsCount);
      used.add(stream);
      ops.push({ kind: r() < 0.5 ? 'step' : 'feed', stream, steps: r() < 0.5 ? 1 : 1 + Math.floor(r() * 6), seed });
    } else if (u < 0.9) ops.push({ kind: 'bad' });
    else ops.push({ kind: 'abort', steps: 1 + Math.floor(r() * 8), seed });
  }
  return ops;
}

async function batcher(): Promise<string> {
  const r = rng(5);
  const lines: string[] = [];
  for (const c of models()) {
    const ops = mixOps(r, 160, 24);
    const res = await runOps(c, ops, 24, { maxBatch: 32, windowMs: 2 });
    assert.ok(res.maxSize > 1, `${c.name}: requests were never batched together`);
    lines.push(`${c.name}: ${res.ok} ok in ${res.batches} batches (largest ${res.maxSize})`);
  }
  // Over quota mixed in: maxQueue 40 with 160 requests submitted at once.
  const c = models()[0];
  const res = await runOps(c, mixOps(r, 160, 24), 24, { maxBatch: 16, windowMs: 1, maxQueue: 40 });
  assert.ok(res.rejected > 0, 'the queue bound refused nothing');
  lines.push(`maxQueue 40: ${res.ok} ok, ${res.rejected} refused`);
  // Unknown options and bad option values.
  assert.throws(() => new Batcher(c.model, { window: 1 } as never), /options\.window: unknown option/);
  assert.throws(() => new Batcher(c.model, { maxBatch: 0 }), TypeError);
  await assert.rejects(new Batcher(c.model).predict([1], { sigal: 1 } as never), /unknown option/);
  await assert.rejects(new Batcher(c.model).step(models()[1].model.openStream(), 1), /another model/);
  return lines.join('; ');
}

async function property(): Promise<string> {
  const [lm, cls] = models();
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.integer({ min: 1, max: 60 }), fc.integer({ min: 1, max: 24 }), fc.boolean(), async (seed, n, maxBatch, which) => {
      const c = which ? lm : cls;
      await runOps(c, mixOps(rng(seed), n, 6), 6, { maxBatch, windowMs: 1 });
      runs++;
    }),
    { numRuns: 25, seed: 20261203 },
  );
  return `${runs} random request mixes bit-identical to alone`;
}

async function queue(): Promise<string> {
  const [lm] = models();
  let deepest = 0;
  const b = new Batcher(lm.model, { maxQueue: 10, maxBatch: 4, windowMs: 5, onBatch: (i) => { deepest = Math.max(deepest, i.queueDepth); } });
  const ps = Array.from({ length: 25 }, (_, i) => b.predict([i % 30, 1, 2]));
  assert.ok(b.queueDepth <= 10);
  const s = await Promise.allSettled(ps);
  const refused = s.filter((x) => x.status === 'rejected');
  assert.equal(refused.length, 15);
  for (const x of refused) {
    assert.ok((x as PromiseRejectedResult).reason instanceof QueueFullError);
    assert.match((x as PromiseRejectedResult).reason.message, /queue is full \(10 requests waiting\)/);
  }
  assert.equal(b.stats().rejected, 15);
  assert.ok(deepest <= 10);
  // Once drained, the queue takes requests again.
  await b.predict([1, 2]);
  await b.close();
  return `maxQueue 10: 10 of 25 accepted, 15 QueueFullError, deepest ${deepest}`;
}

async function shutdown(): Promise<string> {
  const [lm] = models();
  const b = new Batcher(lm.model, { maxBatch: 8, windowMs: 3 });
  const streamsB = Array.from({ length: 4 }, () => b.openStream());
  const accepted: Promise<Tensor>[] = [];
  for (let i = 0; i < 40; i++) accepted.push(i % 2 ? b.predict([i % 30, 2, 3, 4]) : b.feed(streamsB[(i / 2) % 4], [i % 30, 7]));
  await new Promise((r) => setImmediate(r));  // some are running now, the rest wait
  const closing = b.close();
  await assert.rejects(b.predict([1]), BatcherClosedError);
  const results = await Promise.allSettled(accepted);
  await closing;
  const failed = results.filter((x) => x.status === 'rejected');
  assert.equal(failed.length, 0, `lost ${failed.length} accepted requests`);
  assert.equal(b.stats().completed, 40);
  for (const s of streamsB) assert.equal(s.steps, 10);
  return '40 accepted requests all answered across close(); new ones refused with BatcherClosedError';
}

/** eager (default): an idle batcher runs at the next turn, not after the window; false waits the window. */
async function eager(): Promise<string> {
  const [lm] = models();
  const turn = () => new Promise((r) => setImmediate(r));
  const sizes = async (options: { eager?: boolean }): Promise<number[]> => {
    const got: number[] = [];
    // A window no test would wait for: only eagerness (or close()) can run the first request.
    const b = new Batcher(lm.model, { windowMs: 60_000, ...options, onBatch: (i) => got.push(i.size) });
    const first = b.predict([1, 2, 3]);
    const ran = await Promise.race([first.then(() => true), (async () => { for (let i = 0; i < 200; i++) await turn(); return false; })()]);
    const together = [b.predict([4, 5]), b.predict([6])];  // submitted in one turn: one batch
    if (!ran) await b.close();
    else {
      await Promise.all(together);
      await b.close();
    }
    await Promise.all([first, ...together]);
    return got;
  };
  const eagerSizes = await sizes({});
  assert.deepEqual(eagerSizes, [1, 2], `eager: expected the lone request alone, then the two together; got ${JSON.stringify(eagerSizes)}`);
  const waitSizes = await sizes({ eager: false });
  assert.deepEqual(waitSizes, [3], `eager false: expected all three in one batch at close(); got ${JSON.stringify(waitSizes)}`);
  assert.throws(() => new Batcher(lm.model, { eager: 1 } as never), /options\.eager/);
  return `eager: batches ${JSON.stringify(eagerSizes)}; eager false: ${JSON.stringify(waitSizes)}`;
}

const cases: Record<string, () => Promise<string>> = { streams, move, batcher, property, queue, shutdown, eager };
if (which === 'move-child') await moveChild(process.argv[3]);
else if (!cases[which]) throw new Error(`serve-body: unknown case ${which}`);
else console.log(`ok: ${which}: ${await cases[which]()}`);
