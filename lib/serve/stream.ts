// Streams over a Sequential model: each stream keeps its own state for every recurrent layer
// (h, and c for an LSTM, per layer of a unidirectional stack) and advances one step or a whole
// chunk of a sequence at a time. The StreamEngine steps the rows of many streams together: it
// gathers their states into a preallocated batch buffer, makes one native call per recurrent layer
// (the prepared stack's variable-length path when the chunks differ in length), and scatters the
// final states back. Its buffers are pooled per workspace and grow only when a larger batch comes,
// so a step allocates no state-sized buffer in JavaScript.
//
// Batch invariance. The native float32 kernels (native/core/packed_gemm) sum every element of a
// product in one chain over k in order whatever the number of rows and however K is cut, so a
// float32 stack's rows never depend on which other rows share the call. float64 stacks run on BLAS,
// whose summation path depends on the shape: the engine pads each of their batches with zero rows of
// full length up to `minRows` active rows at every step (3, or 9 when an inner dimension exceeds 256:
// no GEMV path, no K chunks decided by the row count). Dense layers run row by row (BLAS picks its
// path by the shape it is given). A stream's results are then bit-identical whichever other
// streams share its batch, and to the stream run alone.
import { native, type NativeArray, type NativeStackCall, type NativeStackResult } from '../native.js';
import { Tensor, formatShape, type DType, type TensorData } from '../tensor.js';
import { show } from '../options.js';
import { RecurrentBase } from '../layers/base.js';
import { Recurrent } from '../layers/recurrent.js';
import { Bidirectional, DropoutWrapper } from '../layers/wrappers.js';
import { Dense } from '../layers/dense.js';
import { Activation, Dropout, Embedding, Masking, RepeatVector, TimeDistributed } from '../layers/shaping.js';
import type { Sequential } from '../model/sequential.js';

type Stage =
  | { kind: 'embedding'; layer: Embedding }
  | { kind: 'recurrent'; layer: RecurrentBase; index: number; L: number; P: number; H: number; lstm: boolean; hOff: number; cOff: number; view: number; sequences: boolean }
  | { kind: 'dense'; layer: Dense; index: number }
  | { kind: 'activation'; layer: Activation }
  | { kind: 'identity' };

/** One row of a batched call: a stream's state (null: zeros, a fresh sequence) and its chunk. */
export interface EngineEntry {
  /** The state to start from ([stateSize]); null starts from zeros. */
  state: TensorData | null;
  /** The chunk: steps·inputSize features, or steps ids. */
  x: TensorData;
  steps: number;
  /** Where the final state goes ([stateSize]); null when it is not kept. */
  stateOut: TensorData | null;
}

/** A workspace's pooled buffers (one per concurrent call), grown on demand. */
class Workspace {
  private readonly f = new Map<string, TensorData>();
  private readonly i = new Map<string, Int32Array>();
  constructor(private readonly dtype: DType) {}
  floats(key: string, n: number): TensorData {
    let b = this.f.get(key);
    if (!b || b.length < n) {
      b = zeros(this.dtype, Math.max(n, 2 * (b?.length ?? 0)));
      this.f.set(key, b);
    }
    return b.subarray(0, n);
  }
  /** Whether x is a view of one of this workspace's float buffers (reused by the next call). */
  owns(x: TensorData): boolean {
    for (const b of this.f.values()) if (b.buffer === x.buffer) return true;
    return false;
  }
  ints(key: string, n: number): Int32Array {
    let b = this.i.get(key);
    if (!b || b.length < n) {
      b = new Int32Array(Math.max(n, 2 * (b?.length ?? 0)));
      this.i.set(key, b);
    }
    return b.subarray(0, n);
  }
}

/** float64 stacks (BLAS): the largest inner dimension up to which small batches are padded to 3 rows only. */
const FLOAT64_PAD_K = 256;

export interface EngineOptions {
  /**
   * Keep results independent of the batch composition (default true): run Dense layers row by row
   * and pad small float64 batches to BLAS's row minimum (float32 needs no padding). false runs each Dense layer as one
   * product over the batch (faster; the last bits may then depend on which rows share a batch).
   */
  batchInvariant?: boolean;
}

export class StreamEngine {
  readonly dtype: DType;
  /** Scalars of one stream's state. */
  readonly stateSize: number;
  /** 'ids' for a model that starts with an Embedding, else 'features'. */
  readonly inputKind: 'ids' | 'features';
  /** Features per step of the input (the Embedding's inputDim bounds the ids instead). */
  readonly inputSize: number;
  readonly idLimit: number;
  /** Features of the model's output per step (or of its one output). */
  readonly outputWidth: number;
  /** Whether the model returns an output per step (else only after the last step of a chunk). */
  readonly perStepOutput: boolean;
  /** Rows every native call gets at least (see the batch invariance note above). */
  readonly minRows: number;
  /** Describes the state layout; toBytes/fromBytes check it. */
  readonly layout: string;
  readonly batchInvariant: boolean;
  private readonly stages: Stage[];
  private readonly free: Workspace[] = [];
  /** Per recurrent layer l of each stage: [offset, length] of its h, then of its c, in a state. */
  private readonly spans: [number, number][];
  private readonly viewCache = new WeakMap<TensorData, TensorData[]>();
  /** Copies of one-step inputs given as number lists are cut from this slab (see row()). */
  private slab: TensorData | undefined;
  private slabUsed = 0;

  constructor(readonly model: Sequential, options: EngineOptions = {}) {
    const where = 'openStream';
    this.batchInvariant = options.batchInvariant ?? true;
    if (!model.built) throw new TypeError(`${where}: the model is not built (fit, predict, build or load it first)`);
    this.dtype = model.dtype;
    const stages: Stage[] = [];
    let offset = 0, maxK = 0, width = 0, perStep = true;
    const layouts: string[] = [];
    const spans: [number, number][] = [];
    let inputKind: 'ids' | 'features' = 'features', inputSize = 0, idLimit = 0;
    model.layers.forEach((layer, i) => {
      const name = `${where}: layer ${i} (${layer.className})`;
      if (i === 0) {
        if (layer instanceof Embedding) {
          inputKind = 'ids';
          inputSize = 1;
          idLimit = layer.inputDim;
        } else if (layer instanceof RecurrentBase) {
          inputSize = layer.inputSize;
        }
      }
      if (layer instanceof Embedding) {
        if (layer.maskZero) throw new TypeError(`${name}: maskZero masks steps, which a stream does not support (make the Embedding without maskZero)`);
        stages.push({ kind: 'embedding', layer });
        width = layer.outputDim;
      } else if (layer instanceof RecurrentBase) {
        if (!perStep) throw new TypeError(`${name}: reads a sequence, but the layer before it returns only its last output`);
        const def = layer.stackDef();
        if (def.numDirections !== 1 || layer instanceof Bidirectional) {
          throw new TypeError(`${name}: a bidirectional layer needs the whole sequence (its backward direction starts at the end), so it cannot stream; streams take unidirectional layers only`);
        }
        if (layer.processingOrder()) throw new TypeError(`${name}: goBackwards reads the sequence from its end, so the layer cannot stream`);
        if (layer.mergeMode() !== 'concat') throw new TypeError(`${name}: mergeMode '${layer.mergeMode()}' is for two directions`);
        const base = layer instanceof DropoutWrapper ? layer.layer : layer;
        if (base instanceof Recurrent) {
          const f = base.features();
          maxK = Math.max(maxK, f.inputSize, f.outputSize, f.units, f.projSize, f.fullGateRecurrence ? 3 * f.units : 0, f.numLayers > 1 ? f.outputSize : 0);
        } else {
          maxK = Infinity;
        }
        const L = def.numLayers, P = def.outputSize, H = def.units, lstm = def.stateCount === 2;
        stages.push({ kind: 'recurrent', layer, index: i, L, P, H, lstm, hOff: offset, cOff: offset + L * P, view: spans.length, sequences: layer.returnSequences });
        for (let l = 0; l < L; l++) spans.push([offset + l * P, P], lstm ? [offset + L * P + l * H, H] : [0, 0]);
        offset += L * P + (lstm ? L * H : 0);
        layouts.push(`${i}:${layer.className}:${L}x${P}${lstm ? `+${L}x${H}` : ''}`);
        width = layer.outputWidth;
        perStep = layer.returnSequences;
      } else if (layer instanceof Dense || layer instanceof TimeDistributed) {
        const dense = layer instanceof Dense ? layer : layer.layer;
        stages.push({ kind: 'dense', layer: dense, index: i });
        width = dense.units;
      } else if (layer instanceof Activation) {
        stages.push({ kind: 'activation', layer });
      } else if (layer instanceof Dropout) {
        stages.push({ kind: 'identity' });
      } else if (layer instanceof Masking) {
        throw new TypeError(`${name}: masks steps, which a stream does not support (remove the Masking layer, or use predict with lengths)`);
      } else if (layer instanceof RepeatVector) {
        throw new TypeError(`${name}: repeats one vector into a sequence, which a stream does not support`);
      } else {
        throw new TypeError(`${name}: not supported in a stream`);
      }
    });
    if (offset === 0) throw new TypeError(`${where}: the model has no recurrent layer, so a stream has no state to carry`);
    this.stages = stages;
    this.stateSize = offset;
    this.spans = spans;
    this.inputKind = inputKind;
    this.inputSize = inputSize;
    this.idLimit = idLimit;
    this.outputWidth = width;
    this.perStepOutput = perStep;
    // Rows per native call: any number for float32; for float64 (BLAS) at least 3, more than 8
    // when an inner dimension is above 256 (see the batch invariance note above).
    this.minRows = this.batchInvariant && this.dtype === 'float64' ? (maxK > FLOAT64_PAD_K ? 9 : 3) : 1;
    this.layout = `${this.dtype};${layouts.join(',')}`;
  }

  /** A state's h and c parts as views (made once per state array: a view per call costs an allocation). */
  private views(state: TensorData): TensorData[] {
    let v = this.viewCache.get(state);
    if (!v) this.viewCache.set(state, (v = this.spans.map(([o, n]) => state.subarray(o, o + n))));
    return v;
  }

  /**
   * A fresh row of n scalars for a copied input: a view of a shared slab (a typed array of its own
   * costs an ArrayBuffer allocation, ~0.5–0.8 µs a request, a view ~0.03 µs). A full slab is left
   * to the views still holding it and a new one is cut.
   */
  private row(n: number): TensorData {
    const SLAB = 1 << 14;
    if (n > SLAB / 16) return zeros(this.dtype, n);
    if (this.slab === undefined || this.slabUsed + n > SLAB) {
      this.slab = zeros(this.dtype, SLAB);
      this.slabUsed = 0;
    }
    const r = this.slab.subarray(this.slabUsed, this.slabUsed + n);
    this.slabUsed += n;
    return r;
  }

  /** Workspaces in use by calls in flight are never shared. */
  private acquire(): Workspace {
    return this.free.pop() ?? new Workspace(this.dtype);
  }

  /** Checks one chunk (features [steps, inputSize] or ids [steps]) and returns its data and steps. */
  checkChunk(x: unknown, where: string, single: boolean): { data: TensorData; steps: number } {
    const I = this.inputSize;
    if (this.inputKind === 'ids') {
      let data: ArrayLike<unknown>;
      if (typeof x === 'number' && single) data = [x];
      else if (Tensor.isTensor(x)) {
        const ok = single ? x.size === 1 && x.rank <= 1 : x.rank === 1 && x.size >= 1;
        if (!ok) throw new RangeError(`${where}: expected ${single ? 'one id (a number or a Tensor [1])' : 'ids [steps]'}, got a Tensor ${formatShape(x.shape)}`);
        data = x.data;
      } else if (x !== null && typeof x === 'object' && typeof (x as ArrayLike<unknown>).length === 'number' && !single) {
        data = x as ArrayLike<unknown>;
        if (data.length < 1) throw new RangeError(`${where}: expected at least one id, got an empty list`);
      } else {
        throw new TypeError(`${where}: expected ${single ? 'an id (an integer in [0, ' + this.idLimit + '))' : 'an array-like of ids [steps]'}, got ${show(x)}`);
      }
      const out = zeros(this.dtype, data.length);
      for (let k = 0; k < data.length; k++) {
        const v = data[k];
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= this.idLimit) {
          throw new RangeError(`${where}: id ${k} must be an integer in [0, inputDim=${this.idLimit}), got ${show(v)}`);
        }
        out[k] = v;
      }
      return { data: out, steps: data.length };
    }
    if (Tensor.isTensor(x)) {
      const ok = single ? (x.rank === 1 && x.shape[0] === I) || (x.rank === 2 && x.shape[0] === 1 && x.shape[1] === I)
        : x.rank === 2 && x.shape[1] === I && x.shape[0] >= 1;
      if (!ok) throw new RangeError(`${where}: expected a Tensor ${single ? `[inputSize=${I}]` : `[steps, inputSize=${I}]`}, got ${formatShape(x.shape)}`);
      if (x.dtype !== this.dtype) throw new TypeError(`${where}: expected a ${this.dtype} Tensor (the model's dtype), got ${x.dtype}`);
      checkFinite(x.data, where);
      return { data: x.data, steps: single ? 1 : x.shape[0] };
    }
    if (single && x !== null && typeof x === 'object' && typeof (x as ArrayLike<unknown>).length === 'number') {
      const list = x as ArrayLike<unknown>;
      if (list.length !== I) throw new RangeError(`${where}: expected inputSize=${I} numbers, got ${list.length}`);
      const out = this.row(I);
      for (let k = 0; k < I; k++) {
        const v = list[k];
        if (typeof v !== 'number') throw new TypeError(`${where}: entry ${k} must be a number, got ${show(v)}`);
        out[k] = v;
      }
      checkFinite(out, where);
      return { data: out, steps: 1 };
    }
    throw new TypeError(`${where}: expected ${single ? `a Tensor [inputSize=${I}] or ${I} numbers` : `a Tensor [steps, inputSize=${I}]`}, got ${show(x)}`);
  }

  /** Runs the entries as one batch synchronously; returns each entry's output (steps·width, or width). */
  run(entries: readonly EngineEntry[]): TensorData[] {
    const it = this.pipeline(entries);
    try {
      let r = it.next();
      while (!r.done) r = it.next(native.stackForward(r.value.stack as never, r.value.call));
      return r.value;
    } finally {
      it.return([]);  // a failed native call leaves the generator suspended: release its workspace
    }
  }

  /** Same as run, with the recurrent layers on the native thread pool (the event loop is free meanwhile). */
  async runAsync(entries: readonly EngineEntry[]): Promise<TensorData[]> {
    const it = this.pipeline(entries);
    try {
      let r = it.next();
      while (!r.done) r = it.next(await native.stackForwardAsync(r.value.stack as never, r.value.call));
      return r.value;
    } finally {
      it.return([]);
    }
  }

  /** Output steps of an entry: its steps with per-step outputs, else 1. */
  outputSteps(steps: number): number {
    return this.perStepOutput ? steps : 1;
  }

  /**
   * The batch as a generator that yields each native call and receives its result (so run and
   * runAsync share every other line). States are written to stateOut only once the whole batch has
   * succeeded.
   */
  private *pipeline(entries: readonly EngineEntry[]): Generator<{ stack: unknown; call: NativeStackCall }, TensorData[], NativeStackResult> {
    const n = entries.length;
    if (n === 0) return [];
    const ws = this.acquire();
    try {
      let T = 1;
      for (const e of entries) T = Math.max(T, e.steps);
      let full = 0;
      for (const e of entries) if (e.steps === T) full++;
      const N = n + Math.max(0, this.minRows - full);
      const lengths = ws.ints('lengths', N).fill(T);
      for (let b = 0; b < n; b++) lengths[b] = entries[b].steps;
      const inWidth = this.inputKind === 'ids' ? 1 : this.inputSize;
      const x0 = ws.floats('x', N * T * inWidth).fill(0);
      for (let b = 0; b < n; b++) {
        const e = entries[b], len = e.steps * inWidth;
        x0.set(e.x.length === len ? e.x : e.x.subarray(0, len), b * T * inWidth);
      }
      // Native results per recurrent stage: the final states are written back only once the whole
      // batch has succeeded.
      const results: { s: Extract<Stage, { kind: 'recurrent' }>; r: NativeStackResult }[] = [];
      // The flow: [N, T, width] (rank 3) or [N, width] once a layer returns its last output only.
      let x: TensorData = x0, rank3 = true, w = inWidth;
      for (const s of this.stages) {
        if (s.kind === 'embedding') {
          x = s.layer.forward(Tensor.from(x, [N, T])).output.data;
          w = s.layer.outputDim;
        } else if (s.kind === 'recurrent') {
          const { L, P, H } = s;
          const h0 = ws.floats(`h${s.index}`, L * N * P);
          const c0 = s.lstm ? ws.floats(`c${s.index}`, L * N * H) : undefined;
          for (let l = 0; l < L; l++) {  // the padding rows start from zeros
            h0.fill(0, (l * N + n) * P, (l + 1) * N * P);
            if (c0) c0.fill(0, (l * N + n) * H, (l + 1) * N * H);
          }
          for (let b = 0; b < n; b++) {
            const st = entries[b].state;
            const v = st ? this.views(st) : null;
            for (let l = 0; l < L; l++) {
              if (v) h0.set(v[s.view + 2 * l], (l * N + b) * P);
              else h0.fill(0, (l * N + b) * P, (l * N + b + 1) * P);
              if (c0) {
                if (v) c0.set(v[s.view + 2 * l + 1], (l * N + b) * H);
                else c0.fill(0, (l * N + b) * H, (l * N + b + 1) * H);
              }
            }
          }
          const call: NativeStackCall = { steps: T, batch: N, x: x as NativeArray, batchFirst: true, h0, lengths };
          if (c0) call.c0 = c0;
          if (!s.sequences) call.outputs = 'states';  // its last output is hN: no per-step y made
          const r: NativeStackResult = yield { stack: s.layer.preparedStack(`openStream: layer ${s.index} (${s.layer.className})`), call };
          results.push({ s, r });
          if (s.sequences) {
            x = r.y;
            w = P;
          } else {
            x = r.hN.subarray((L - 1) * N * P, L * N * P);
            rank3 = false;
            w = P;
          }
        } else if (s.kind === 'dense') {
          const d = s.layer, U = d.units;
          const rows = rank3 ? N * T : N;
          if (!this.batchInvariant) {
            x = d.forward(Tensor.from(x, [rows, w])).output.data;
          } else {
            const out = ws.floats(`d${s.index}`, rows * U);
            for (let b = 0; b < n; b++) {
              const steps = rank3 ? entries[b].steps : 1, r0 = rank3 ? b * T : b;
              for (let t = 0; t < steps; t++) {
                const q = r0 + t;
                out.set(d.forward(Tensor.from(x.subarray(q * w, (q + 1) * w), [1, w])).output.data, q * U);
              }
            }
            x = out;
          }
          w = U;
        } else if (s.kind === 'activation') {
          x = s.layer.forward(Tensor.from(x, rank3 ? [N, T, w] : [N, w])).output.data;
        }
      }
      // Each entry's output is a view of one buffer that belongs to this batch alone: the last
      // stage's own result when this call made it (not a pooled buffer the next call reuses), else
      // one fresh copy (a typed array per entry, slice, costs an ArrayBuffer allocation each, ~3 µs
      // per stream, more than the copy).
      const outputs: TensorData[] = [];
      if (!ws.owns(x)) {
        for (let b = 0; b < n; b++) {
          const from = (rank3 ? b * T : b) * w;
          outputs.push(x.subarray(from, from + (rank3 ? entries[b].steps : 1) * w));
        }
      } else {
        let total = 0;
        for (let b = 0; b < n; b++) total += (rank3 ? entries[b].steps : 1) * w;
        const all = zeros(this.dtype, total);
        for (let b = 0, o = 0; b < n; b++) {
          const len = (rank3 ? entries[b].steps : 1) * w, from = (rank3 ? b * T : b) * w;
          all.set(x.subarray(from, from + len), o);
          outputs.push(all.subarray(o, o + len));
          o += len;
        }
      }
      for (const { s, r } of results) {
        const { L, P, H } = s;
        for (let b = 0; b < n; b++) {
          const so = entries[b].stateOut;
          if (!so) continue;
          const v = this.views(so);
          for (let l = 0; l < L; l++) {
            v[s.view + 2 * l].set(r.hN.subarray((l * N + b) * P, (l * N + b + 1) * P));
            if (r.cN) v[s.view + 2 * l + 1].set(r.cN.subarray((l * N + b) * H, (l * N + b + 1) * H));
          }
        }
      }
      return outputs;
    } finally {
      this.free.push(ws);
    }
  }
}

/** A zero-filled array of the dtype. */
function zeros(dtype: DType, n: number): TensorData {
  return dtype === 'float64' ? new Float64Array(n) : new Float32Array(n);
}

function checkFinite(data: TensorData, where: string): void {
  for (let k = 0; k < data.length; k++) {
    if (!Number.isFinite(data[k])) throw new RangeError(`${where}: entry ${k} is ${data[k]} (inputs must be finite)`);
  }
}

const engines = new WeakMap<Sequential, Map<string, StreamEngine>>();

/** The model's engine for these options (one per model and batchInvariant setting). */
export function engineFor(model: Sequential, options: EngineOptions = {}): StreamEngine {
  let byKey = engines.get(model);
  if (!byKey) engines.set(model, (byKey = new Map()));
  const key = String(options.batchInvariant ?? true);
  let e = byKey.get(key);
  if (!e) byKey.set(key, (e = new StreamEngine(model, options)));
  return e;
}

/** A copy of a stream's state: restore() it into this stream or any stream of the same model. */
export interface StreamSnapshot {
  readonly layout: string;
  readonly steps: number;
  readonly state: TensorData;
}

const MAGIC = 0x534b4e52; // 'RNKS'
const BYTES_VERSION = 1;

export interface OpenStreamOptions extends EngineOptions {
  /** Start from this snapshot (or toBytes() output) instead of zeros. */
  from?: StreamSnapshot | Uint8Array;
}

/**
 * A stream: the model applied step by step to one sequence, its recurrent states carried between
 * calls. Not for concurrent use: a call while an async one is in flight is refused.
 */
export class ModelStream {
  /** Steps taken so far. */
  steps = 0;
  /** @internal The state, [engine.stateSize]: per recurrent layer h [L, P] then c [L, H]. */
  readonly state: TensorData;
  /** @internal Set while an async call or a batch holds the stream. */
  busy = false;
  private closed = false;

  /** @internal Use model.openStream(). */
  constructor(readonly engine: StreamEngine) {
    this.state = zeros(engine.dtype, engine.stateSize);
  }

  /** @internal Throws unless the stream can take a call now. */
  claim(where: string): void {
    if (this.closed) throw new TypeError(`${where}: the stream is closed`);
    if (this.busy) throw new Error(`${where}: the stream is busy (an async call or a batch is advancing it); wait for it first`);
  }

  private out(data: TensorData, steps: number, single: boolean): Tensor {
    const W = this.engine.outputWidth;
    return single || !this.engine.perStepOutput ? Tensor.from(data, [W]) : Tensor.from(data, [steps, W]);
  }

  /** One step: x_t [inputSize] (or one id) → the model's output for it, [width]. */
  step(x: Tensor | ArrayLike<number> | number): Tensor {
    return this.advance(x, true, 'ModelStream.step');
  }

  /** A chunk of the sequence: [steps, inputSize] (or ids [steps]) → [steps, width] per step, or [width] for a last-output model. */
  feed(sequence: Tensor | ArrayLike<number>): Tensor {
    return this.advance(sequence, false, 'ModelStream.feed');
  }

  private advance(x: unknown, single: boolean, where: string): Tensor {
    this.claim(where);
    const { data, steps } = this.engine.checkChunk(x, where, single);
    const [out] = this.engine.run([{ state: this.state, x: data, steps, stateOut: this.state }]);
    this.steps += steps;
    return this.out(out, steps, single);
  }

  /** step() on the native thread pool. */
  async stepAsync(x: Tensor | ArrayLike<number> | number): Promise<Tensor> {
    return this.advanceAsync(x, true, 'ModelStream.stepAsync');
  }

  /** feed() on the native thread pool. */
  async feedAsync(sequence: Tensor | ArrayLike<number>): Promise<Tensor> {
    return this.advanceAsync(sequence, false, 'ModelStream.feedAsync');
  }

  private async advanceAsync(x: unknown, single: boolean, where: string): Promise<Tensor> {
    this.claim(where);
    const { data, steps } = this.engine.checkChunk(x, where, single);
    this.busy = true;
    try {
      const [out] = await this.engine.runAsync([{ state: this.state, x: data, steps, stateOut: this.state }]);
      this.steps += steps;
      return this.out(out, steps, single);
    } finally {
      this.busy = false;
    }
  }

  /** A copy of the state now. */
  snapshot(): StreamSnapshot {
    this.claim('ModelStream.snapshot');
    return Object.freeze({ layout: this.engine.layout, steps: this.steps, state: this.state.slice() });
  }

  /** Sets the state from a snapshot of a stream of this model (or toBytes() output). */
  restore(snapshot: StreamSnapshot | Uint8Array): void {
    const where = 'ModelStream.restore';
    this.claim(where);
    const s = snapshot instanceof Uint8Array ? decodeState(snapshot, this.engine, where) : snapshot;
    if (s === null || typeof s !== 'object' || typeof s.layout !== 'string' || !s.state) {
      throw new TypeError(`${where}: expected a snapshot() of a stream or toBytes() output, got ${show(snapshot)}`);
    }
    if (s.layout !== this.engine.layout || s.state.length !== this.engine.stateSize) {
      throw new TypeError(`${where}: the snapshot is of a model with another state layout (${s.layout}), this stream's is ${this.engine.layout}`);
    }
    this.state.set(s.state);
    this.steps = s.steps;
  }

  /** A new stream that continues from this one's state (the two then advance independently). */
  fork(): ModelStream {
    this.claim('ModelStream.fork');
    const f = new ModelStream(this.engine);
    f.state.set(this.state);
    f.steps = this.steps;
    return f;
  }

  /** Back to the zero state. */
  reset(): void {
    this.claim('ModelStream.reset');
    this.state.fill(0);
    this.steps = 0;
  }

  /** The state as bytes (another process with the same model continues from it: fromBytes or openStream({ from })). */
  toBytes(): Uint8Array {
    this.claim('ModelStream.toBytes');
    return encodeState(this.engine, this.steps, this.state);
  }

  /** A stream of `model` continuing from toBytes() output. */
  static fromBytes(model: Sequential, bytes: Uint8Array, options: EngineOptions = {}): ModelStream {
    const s = new ModelStream(engineFor(model, options));
    s.restore(bytes);
    return s;
  }

  /** Refuses further calls. */
  close(): void {
    this.closed = true;
  }
}

/**
 * Bytes: 'RNKS' magic (u32 LE), version (u32), steps (f64), dtype byte length (u32), layout length
 * (u32) + layout (UTF-8), then the state (little-endian float32 or float64).
 */
function encodeState(engine: StreamEngine, steps: number, state: TensorData): Uint8Array {
  const layout = new TextEncoder().encode(engine.layout);
  const es = state.BYTES_PER_ELEMENT;
  const head = 24 + layout.length;
  const pad = (es - (head % es)) % es;
  const out = new Uint8Array(head + pad + state.length * es);
  const v = new DataView(out.buffer);
  v.setUint32(0, MAGIC, true);
  v.setUint32(4, BYTES_VERSION, true);
  v.setFloat64(8, steps, true);
  v.setUint32(16, es, true);
  v.setUint32(20, layout.length, true);
  out.set(layout, 24);
  const o = head + pad;
  for (let k = 0; k < state.length; k++) {
    if (es === 8) v.setFloat64(o + 8 * k, state[k], true);
    else v.setFloat32(o + 4 * k, state[k], true);
  }
  return out;
}

function decodeState(bytes: Uint8Array, engine: StreamEngine, where: string): StreamSnapshot {
  const bad = (why: string) => new TypeError(`${where}: not a stream state of this model (${why})`);
  if (bytes.length < 24) throw bad(`${bytes.length} bytes`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (v.getUint32(0, true) !== MAGIC) throw bad('no RNKS header');
  if (v.getUint32(4, true) !== BYTES_VERSION) throw bad(`format version ${v.getUint32(4, true)}, this build reads ${BYTES_VERSION}`);
  const steps = v.getFloat64(8, true), es = v.getUint32(16, true), n = v.getUint32(20, true);
  if (24 + n > bytes.length) throw bad('truncated layout');
  const layout = new TextDecoder().decode(bytes.subarray(24, 24 + n));
  if (layout !== engine.layout) throw bad(`its layout is ${layout}, this model's is ${engine.layout}`);
  const head = 24 + n, o = head + ((es - (head % es)) % es);
  if (bytes.length !== o + engine.stateSize * es) throw bad(`expected ${o + engine.stateSize * es} bytes, got ${bytes.length}`);
  if (!Number.isSafeInteger(steps) || steps < 0) throw bad(`step count ${steps}`);
  const state = zeros(engine.dtype, engine.stateSize);
  for (let k = 0; k < state.length; k++) state[k] = es === 8 ? v.getFloat64(o + 8 * k, true) : v.getFloat32(o + 4 * k, true);
  for (let k = 0; k < state.length; k++) if (!Number.isFinite(state[k])) throw bad(`state entry ${k} is ${state[k]}`);
  return { layout, steps, state };
}

/**
 * Advances many streams by one batched call: streams[i] takes chunks[i] (one step: x_t, or a
 * chunk [steps, inputSize] when options.chunks is true). Returns each stream's output as step/feed would.
 */
export function stepStreams(streams: readonly ModelStream[], inputs: readonly unknown[], options: { chunks?: boolean } = {}): Tensor[] {
  const where = 'stepStreams';
  if (!Array.isArray(streams) || !Array.isArray(inputs) || streams.length !== inputs.length) {
    throw new TypeError(`${where}: expected two arrays of the same length (streams and their inputs)`);
  }
  if (streams.length === 0) return [];
  const engine: StreamEngine = streams[0].engine;
  const single = !options.chunks;
  const seen = new Set<ModelStream>();
  const entries = streams.map((s, i): EngineEntry => {
    if (!(s instanceof ModelStream) || s.engine !== engine) throw new TypeError(`${where}: streams[${i}] must be a stream of the same model (and options) as streams[0]`);
    if (seen.has(s)) throw new TypeError(`${where}: streams[${i}] appears twice; a stream advances once per call`);
    seen.add(s);
    s.claim(`${where}: streams[${i}]`);
    const { data, steps } = engine.checkChunk(inputs[i], `${where}: inputs[${i}]`, single);
    return { state: s.state, x: data, steps, stateOut: s.state };
  });
  const outs: TensorData[] = engine.run(entries);
  return outs.map((o: TensorData, i: number) => {
    streams[i].steps += entries[i].steps;
    const W = engine.outputWidth;
    return single || !engine.perStepOutput ? Tensor.from(o, [W]) : Tensor.from(o, [entries[i].steps, W]);
  });
}
