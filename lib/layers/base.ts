// What every recurrent layer shares: one native call per forward or backward on a prepared stack
// (layers × directions, lengths or mask, dropout), batch-first at the API and time-major inside.
// SimpleRNN/LSTM/GRU (stacks, PyTorch style), Bidirectional (Keras style) and DropoutWrapper
// (TF1 style) differ only in how they describe their stack, their states and their dropout.
import {
  native,
  type NativeArray,
  type NativeCellSpec,
  type NativeCellWeights,
  type NativeDropout,
  type NativeRun,
  type NativeStack,
  type NativeStackCall,
  type NativeStackGradients,
  type NativeStackResult,
  type NativeStackStatesResult,
} from '../native.js';
import { checkTensor, formatShape, newTypedArray, Tensor, type DType, type TensorData } from '../tensor.js';
import { checkOptions, flag, optionNames, show } from '../options.js';
import { Random } from '../init.js';

export type MergeMode = 'concat' | 'sum' | 'mul' | 'ave' | 'none';

/**
 * How states are passed in and out: 'single' [h, c] each [batch, ·] (one layer-direction);
 * 'stacked' [h, c] each [layers·directions, batch, ·] (PyTorch); 'pairs' [h_fw, c_fw, h_bw, c_bw]
 * each [batch, ·] (Keras Bidirectional; [h_fw, h_bw] without a cell state).
 */
export type StateStyle = 'single' | 'stacked' | 'pairs';

/** The stack a layer runs: its cells, live weights and how its gradients are named. */
export interface StackDef {
  numLayers: number;
  numDirections: 1 | 2;
  /** Hidden units H and the size P of h and of each direction's output (projSize or units). */
  units: number;
  outputSize: number;
  outputSizeName: 'units' | 'projSize';
  /** 2 for LSTM (h and c), else 1. */
  stateCount: 1 | 2;
  cells(): NativeCellSpec[];
  /** The native weights of every cell (layer-major); `where` names the call in errors. */
  weights(where: string): NativeCellWeights[];
  /** Changes whenever any weight changes (the prepared stack is rebuilt then). */
  versionKey(): string;
  /** The native gradients of every cell, keyed like the layer's stateDict(). */
  gradients(grads: NativeStackGradients['grads']): Record<string, Tensor>;
}

/** Dropout as a layer asks for it (keep probabilities; the seed is drawn per call); off when absent. */
export type DropoutConfig = Omit<NativeDropout, 'seed'>;

export interface ForwardOptions {
  /**
   * Initial states: [h0] or, for LSTM, [h0, c0]; each [batch, units] for one layer-direction, or
   * [numLayers·numDirections, batch, units] for a stack (PyTorch); Bidirectional takes Keras's
   * [h_fw, c_fw, h_bw, c_bw]. Default zeros.
   */
  initialState?: Tensor[];
  /** Keep what backward() needs (default false: inference keeps O(batch·units) state only). */
  training?: boolean;
  /**
   * Valid steps per sequence ([batch] integers in [1, steps]); the rest is padding, which is never
   * computed: outputs there are zero, final states are each sequence's state at its last valid step,
   * and a reverse direction reverses each sequence's valid part only (TF1 sequence_length).
   */
  lengths?: ArrayLike<number>;
  /** Where the padding is when `lengths` is given: 'post' (default) or 'pre' (Keras pad_sequences' default). */
  padding?: 'post' | 'pre';
  /**
   * A 0/1 mask [batch, steps] (Tensor, or a flat array-like of batch·steps values): Keras semantics,
   * masked steps leave state and output unchanged (any pattern, holes included). Not with `lengths`.
   */
  mask?: Tensor | ArrayLike<number | boolean>;
  /** Fixes this call's dropout masks (default: drawn from the layer's seeded generator). */
  dropoutSeed?: number;
  /**
   * Writes the output into this tensor instead of a new one and returns it as `output`: its shape
   * is the output's ([batch, steps, width], or [batch, width] without returnSequences) and its dtype
   * the layer's. A loop that passes the same tensor each call allocates no output buffer (a new
   * 6.5 MB array per call of an LSTM(128 → 256) over 64 × 100 steps had V8 collect every ~10 calls).
   * It must not share memory with the input or the initial states. forwardAsync writes it when the
   * call completes (until then it keeps its old contents; if its buffer is transferred meanwhile,
   * the call rejects). Not with mergeMode 'none' (two outputs).
   */
  output?: Tensor;
}

/** What a training forward keeps for backward(). Valid until the layer's weights change. */
export interface TrainingRun {
  readonly layer: RecurrentBase;
  readonly batch: number;
  readonly steps: number;
  /** Bytes this run keeps natively for backward (its workspaces and packed inputs). */
  readonly bytes: number;
  /**
   * Frees the run's native memory now (backward then refuses it). Runs are also freed when the
   * layer's weights change, or by the garbage collector at the next turn of the event loop.
   */
  release(): void;
  /** @internal */ readonly versionKey: string;
  /** @internal */ readonly native: NativeRun;
  /** @internal */ readonly lastOutputs: TensorData | undefined;
}

export interface ForwardResult {
  /** [batch, steps, width] with returnSequences, else [batch, width] (width: the output size, ×2 for concat). */
  output: Tensor;
  /** mergeMode 'none': the forward and backward outputs (output is then their concatenation). */
  outputs?: Tensor[];
  /** Final states when returnState is set (see ForwardOptions.initialState for the layout), else []. */
  states: Tensor[];
  /** Present when forward ran with training: true. */
  run?: TrainingRun;
}

export interface BackwardOptions {
  /** Gradients of the final states, matching `states`. */
  dStates?: (Tensor | null | undefined)[];
}

export interface Gradients {
  /** dLoss/dInput, [batch, steps, inputSize]. */
  input: Tensor;
  /** dLoss/dInitialState, in the layout of initialState. */
  initialState: Tensor[];
  /** dLoss/dParameter, keyed like stateDict(). */
  params: Record<string, Tensor>;
}

const FORWARD_OPTIONS = optionNames<ForwardOptions>({
  initialState: true, training: true, lengths: true, padding: true, mask: true, dropoutSeed: true, output: true,
});
const BACKWARD_OPTIONS = optionNames<BackwardOptions>({ dStates: true });

/** The runs each layer issued: backward takes no other object. */
const issuedRuns = new WeakMap<object, RecurrentBase>();

export abstract class RecurrentBase {
  abstract readonly className: string;
  readonly inputSize: number;
  readonly dtype: DType;
  readonly returnSequences: boolean;
  readonly returnState: boolean;
  private prepared: { key: string; stack: NativeStack } | undefined;
  /** Draws a fresh dropout seed for each training call. */
  protected dropoutRandom: Random;

  protected constructor(inputSize: number, dtype: DType, returnSequences: boolean, returnState: boolean, seed: number | undefined) {
    this.inputSize = inputSize;
    this.dtype = dtype;
    this.returnSequences = returnSequences;
    this.returnState = returnState;
    this.dropoutRandom = new Random(seed === undefined ? undefined : (seed ^ 0x5bd1e995) >>> 0);
  }

  /**
   * A stateful layer (Keras `stateful`) starts each forward from the final states of its previous
   * forward (detached: no gradient flows back across calls) until resetStates(); an explicit
   * initialState still wins.
   */
  get stateful(): boolean {
    return false;
  }
  /** @internal Carry states between calls as a stateful layer does (truncated BPTT in a model). */
  carryStates = false;
  /** Final states of the last forward, native layout [layers·directions, batch, ·], while carried. */
  private carried: { h: NativeArray; c: NativeArray | undefined; batch: number } | undefined;

  /** Forgets the states a stateful layer carries (the next forward starts from zeros). */
  resetStates(): void {
    this.carried = undefined;
  }

  /** Whether the input size is known and the parameters exist (see build). */
  get built(): boolean {
    return this.inputSize > 0;
  }

  /**
   * Creates the parameters for `inputSize` input features when the layer was made without
   * options.inputSize (a Sequential calls this with the previous layer's output size); `seed`, when
   * given, seeds the weights of a layer made without options.seed. A built layer accepts only its
   * own inputSize.
   */
  abstract build(inputSize: number, seed?: number): void;

  /** @internal Sets inputSize once; false when already built with it, a TypeError for another size. */
  protected setInputSize(inputSize: number, where: string): boolean {
    if (this.built) {
      if (inputSize !== this.inputSize) {
        throw new TypeError(`${where}: the layer is built for inputSize ${this.inputSize}, got an input with ${inputSize} features`);
      }
      return false;
    }
    if (!Number.isSafeInteger(inputSize) || inputSize < 1) throw new TypeError(`${where}: inputSize must be a positive integer, got ${show(inputSize)}`);
    (this as { inputSize: number }).inputSize = inputSize;
    return true;
  }

  /** @internal Reseeds the dropout generator (a model seeding layers that have no seed). */
  protected reseedDropout(seed: number): void {
    this.dropoutRandom = new Random((seed ^ 0x5bd1e995) >>> 0);
  }

  /** @internal The stack this layer runs. */
  abstract stackDef(): StackDef;
  /** @internal How the two directions' outputs are merged. */
  mergeMode(): MergeMode {
    return 'concat';
  }
  /** @internal Outputs in processing order (Keras goBackwards). */
  processingOrder(): boolean {
    return false;
  }
  /** @internal The dropout applied in training. */
  dropoutConfig(): DropoutConfig | undefined {
    return undefined;
  }
  /** @internal */
  abstract stateStyle(): StateStyle;

  /** Features of one step of the output. */
  get outputWidth(): number {
    const d = this.stackDef();
    return this.mergeMode() === 'concat' || this.mergeMode() === 'none' ? d.numDirections * d.outputSize : d.outputSize;
  }

  /** The name of the output's last dimension in messages. */
  private get outputWidthName(): string {
    return this.outputWidth === this.stackDef().outputSize ? this.stackDef().outputSizeName : 'width';
  }

  /**
   * The prepared native stack for the current weights (rebuilt only after a change). A change also
   * frees, now, the previous stack and every training run made with it (they are stale: backward
   * refuses them), so a synchronous training loop never waits for the garbage collector and the
   * event loop to give their memory back.
   */
  private stack(where: string): NativeStack {
    const def = this.stackDef();
    const key = def.versionKey();
    if (!this.prepared || this.prepared.key !== key) {
      const weights = def.weights(where);
      const stack = native.prepareStack({ numLayers: def.numLayers, numDirections: def.numDirections, cells: def.cells() }, weights);
      if (this.prepared) {
        for (const ref of this.runs) {
          const run = ref.deref();
          if (run) native.releaseRun(run);
          this.runRegistry.unregister(ref);
        }
        this.runs.clear();
        native.releaseStack(this.prepared.stack);
      }
      this.prepared = { key, stack };
    }
    return this.prepared.stack;
  }

  /**
   * @internal The prepared native stack for the current weights, for the streams of lib/serve
   * (they call the native stack with their own gathered states).
   */
  preparedStack(where: string): NativeStack {
    return this.stack(where);
  }

  /**
   * Training runs made with the current prepared stack (weakly held; a collected run's entry is
   * dropped by runRegistry). Nothing but a weight change may deref() them: deref() keeps its
   * target alive to the end of the current job, and a pruning pass over the live ones at each
   * call (as there was) kept every run alive through each collection that a call's allocations
   * set off: once 64 were alive at once, dropped runs were never collected (GBs in a loop).
   */
  private runs = new Set<WeakRef<NativeRun>>();
  private runRegistry = new FinalizationRegistry<WeakRef<NativeRun>>((ref) => this.runs.delete(ref));

  private trackRun(run: NativeRun): void {
    const ref = new WeakRef(run);
    this.runs.add(ref);
    this.runRegistry.register(run, ref, ref);
  }

  /** Bytes of the prepared native weights (0 before the first call). */
  get preparedBytes(): number {
    return this.prepared ? native.stackInfo(this.prepared.stack).bytes : 0;
  }

  private newArray(n: number): TensorData {
    return newTypedArray(this.dtype, n, this.className, 'a buffer of this call');
  }

  /** The state tensors a caller passes (initialState, dStates) → native [L·D, B, P] and [L·D, B, H]. */
  private statesIn(list: readonly (Tensor | null | undefined)[], what: string, batch: number, gradients: boolean): [NativeArray | undefined, NativeArray | undefined] {
    const def = this.stackDef();
    const LD = def.numLayers * def.numDirections, P = def.outputSize, H = def.units, PN = def.outputSizeName;
    const style = this.stateStyle();
    const sc = def.stateCount;
    const expected = style === 'pairs' ? 2 * sc : sc;
    const names = this.stateNames(gradients);
    const shapes = this.stateShapes(batch);
    if (!Array.isArray(list) || list.length > expected || (!gradients && list.length !== expected)) {
      throw new TypeError(
        `${what} must be an array of ${gradients ? 'at most ' : ''}${expected} Tensor(s) [${names.join(', ')}]: ${names.map((n, i) => `${n} ${shapes[i]}`).join(', ')}`,
      );
    }
    let h: NativeArray | undefined, c: NativeArray | undefined;
    list.forEach((s, i) => {
      const label = `${what}[${i}] (${names[i]})`;
      if (s === null || s === undefined) {
        if (!gradients) throw new TypeError(`${label}: expected a Tensor of shape ${shapes[i]}, got ${show(s)}`);
        return;
      }
      const isC = style === 'pairs' ? i % sc === 1 : i === 1;
      const width = isC ? H : P, wname = isC ? 'units' : PN;
      if (style === 'pairs') {
        const d = Math.floor(i / sc);
        const data = checkTensor(s, label, [batch, width], ['batch', wname], this.dtype).data;
        const target = isC ? (c ??= this.newArray(LD * batch * H)) : (h ??= this.newArray(LD * batch * P));
        target.set(data, d * batch * width);
        return;
      }
      let data: TensorData;
      if (style === 'single' && !(Tensor.isTensor(s) && s.rank === 3)) {
        data = checkTensor(s, label, [batch, width], ['batch', wname], this.dtype).data;
      } else {
        data = checkTensor(s, label, [LD, batch, width], ['layers·directions', 'batch', wname], this.dtype).data;
      }
      if (isC) c = data;
      else h = data;
    });
    return [h, c];
  }

  private stateNames(gradients: boolean): string[] {
    const sc = this.stackDef().stateCount;
    const base = this.stateStyle() === 'pairs' ? (sc === 2 ? ['h_fw', 'c_fw', 'h_bw', 'c_bw'] : ['h_fw', 'h_bw']) : sc === 2 ? ['h', 'c'] : ['h'];
    return base.map((n) => (gradients ? `d${n}` : this.stateStyle() === 'pairs' ? n : `${n}0`));
  }

  private stateShapes(batch: number): string[] {
    const def = this.stackDef();
    const LD = def.numLayers * def.numDirections;
    const lead = this.stateStyle() === 'stacked' ? `layers·directions=${LD}, ` : '';
    const h = `[${lead}batch=${batch}, ${def.outputSizeName}=${def.outputSize}]`;
    const c = `[${lead}batch=${batch}, units=${def.units}]`;
    return this.stateNames(false).map((n) => (n.startsWith('c') ? c : h));
  }

  /** Native [L·D, B, ·] states → the caller's layout. */
  private statesOut(h: NativeArray, c: NativeArray | undefined, batch: number): Tensor[] {
    const def = this.stackDef();
    const LD = def.numLayers * def.numDirections, P = def.outputSize, H = def.units;
    const style = this.stateStyle();
    if (style === 'stacked') {
      const out = [Tensor.from(h, [LD, batch, P])];
      if (c) out.push(Tensor.from(c, [LD, batch, H]));
      return out;
    }
    // Views, not copies: the native call's outputs are this call's alone, and the views are disjoint.
    const out: Tensor[] = [];
    for (let d = 0; d < (style === 'pairs' ? 2 : 1); d++) {
      out.push(Tensor.from(h.subarray(d * batch * P, (d + 1) * batch * P), [batch, P]));
      if (c) out.push(Tensor.from(c.subarray(d * batch * H, (d + 1) * batch * H), [batch, H]));
    }
    return out;
  }

  private parseMask(mask: unknown, where: string, batch: number, steps: number): Uint8Array {
    let values: ArrayLike<unknown>;
    if (Tensor.isTensor(mask)) {
      if (mask.rank !== 2 || mask.shape[0] !== batch || mask.shape[1] !== steps) {
        throw new RangeError(`${where}: options.mask must have shape [batch=${batch}, steps=${steps}], got ${formatShape(mask.shape)}`);
      }
      values = mask.data;
    } else if (mask !== null && typeof mask === 'object' && typeof (mask as ArrayLike<unknown>).length === 'number') {
      values = mask as ArrayLike<unknown>;
      if (values.length !== batch * steps) {
        throw new RangeError(`${where}: options.mask must hold batch·steps = ${batch * steps} values ([batch, steps] row-major), got ${values.length}`);
      }
    } else {
      throw new TypeError(`${where}: options.mask must be a Tensor [batch, steps] or an array-like of 0/1 values, got ${show(mask)}`);
    }
    const out = new Uint8Array(batch * steps);
    for (let i = 0; i < out.length; i++) {
      const v = values[i];
      if (v === 1 || v === true) out[i] = 1;
      else if (v !== 0 && v !== false) {
        throw new RangeError(`${where}: options.mask[${Math.floor(i / steps)}, ${i % steps}] must be 0 or 1, got ${show(v)}`);
      }
    }
    for (let b = 0; b < batch; b++) {
      if (!out.subarray(b * steps, (b + 1) * steps).some((v) => v === 1)) {
        throw new RangeError(`${where}: options.mask[${b}] masks every step of sequence ${b} (each sequence needs a valid step)`);
      }
    }
    return out;
  }

  private parseLengths(lengths: unknown, where: string, batch: number, steps: number): Int32Array {
    if (lengths === null || typeof lengths !== 'object' || typeof (lengths as ArrayLike<unknown>).length !== 'number') {
      throw new TypeError(`${where}: options.lengths must be an array-like of batch=${batch} integers, got ${show(lengths)}`);
    }
    const list = lengths as ArrayLike<unknown>;
    if (list.length !== batch) throw new RangeError(`${where}: options.lengths must have batch=${batch} entries, got ${list.length}`);
    const out = new Int32Array(batch);
    for (let b = 0; b < batch; b++) {
      const v = list[b];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > steps) {
        throw new RangeError(`${where}: options.lengths[${b}] must be an integer in [1, steps=${steps}], got ${show(v)}`);
      }
      out[b] = v;
    }
    return out;
  }

  private prepare(x: unknown, options: ForwardOptions | undefined, method: string) {
    const where = `${this.className}.${method}`;
    const I = this.inputSize;
    if (!this.built) {
      throw new TypeError(`${where}: the layer is not built: give options.inputSize, call build(inputSize), or use it inside a Sequential`);
    }
    if (!Tensor.isTensor(x)) throw new TypeError(`${where}: input must be a Tensor of shape [batch, steps, inputSize=${I}], got ${x === null ? 'null' : typeof x}`);
    if (x.rank !== 3 || x.shape[2] !== I || x.shape[0] < 1 || x.shape[1] < 1) {
      throw new RangeError(`${where}: input must have shape [batch, steps, inputSize=${I}] with batch, steps >= 1, got ${formatShape(x.shape)}`);
    }
    const [batch, steps] = x.shape as [number, number, number];
    checkTensor(x, `${where}: input`, [batch, steps, I], ['batch', 'steps', 'inputSize'], this.dtype);
    if (options !== undefined) checkOptions(options, `${where}: options`, FORWARD_OPTIONS);
    const training = flag(options?.training, `${where}: options.training`, false);
    const def = this.stackDef();
    const call: NativeStackCall = { steps, batch, x: x.data, batchFirst: true, training };
    // The last output is made from the final states: no per-step outputs natively (no memory in
    // proportion to the steps, native/core/grid.cc grid_infer).
    if (!this.returnSequences) call.outputs = 'states';
    if (options?.lengths !== undefined && options?.mask !== undefined) throw new TypeError(`${where}: options.lengths and options.mask cannot both be given`);
    if (options?.lengths !== undefined) call.lengths = this.parseLengths(options.lengths, where, batch, steps);
    if (options?.padding !== undefined) {
      if (options.padding !== 'post' && options.padding !== 'pre') throw new TypeError(`${where}: options.padding must be 'post' or 'pre', got ${show(options.padding)}`);
      if (call.lengths === undefined) throw new TypeError(`${where}: options.padding needs options.lengths`);
      call.prePadding = options.padding === 'pre';
    }
    if (options?.mask !== undefined) call.mask = this.parseMask(options.mask, where, batch, steps);
    if (options?.initialState !== undefined && options.initialState !== null) {
      [call.h0, call.c0] = this.statesIn(options.initialState, `${where}: initialState`, batch, false);
    }
    const carry = this.stateful || this.carryStates;
    if (carry && call.h0 === undefined && this.carried) {
      if (this.carried.batch !== batch) {
        throw new RangeError(`${where}: a stateful layer keeps the states of batch=${this.carried.batch} sequences, got batch=${batch}; call resetStates() first`);
      }
      call.h0 = this.carried.h;
      if (this.carried.c) call.c0 = this.carried.c;
    }
    const merge = this.mergeMode();
    if (merge !== 'concat' && merge !== 'none') call.merge = merge;
    let given: Tensor | undefined;
    if (options?.output !== undefined) {
      if (merge === 'none') throw new TypeError(`${where}: options.output cannot be given with mergeMode 'none' (the layer returns two outputs)`);
      const W = this.outputWidth;
      const shape = this.returnSequences ? [batch, steps, W] : [batch, W];
      const names = this.returnSequences ? ['batch', 'steps', this.outputWidthName] : ['batch', this.outputWidthName];
      given = checkTensor(options.output, `${where}: options.output`, shape, names, this.dtype);
      const o = given.data;
      const overlaps = (a: TensorData | undefined) =>
        a !== undefined && a.buffer === o.buffer && a.byteOffset < o.byteOffset + o.byteLength && o.byteOffset < a.byteOffset + a.byteLength;
      if (overlaps(x.data) || overlaps(call.h0) || overlaps(call.c0)) {
        throw new RangeError(`${where}: options.output shares memory with the input or an initial state; give it a buffer of its own`);
      }
      if (this.returnSequences) call.y = o;
    }
    if (this.processingOrder()) call.processingOrder = true;
    const dropout = training ? this.dropoutConfig() : undefined;
    if (dropout) {
      let seed: number;
      if (options?.dropoutSeed !== undefined) {
        const s = options.dropoutSeed;
        if (typeof s !== 'number' || !Number.isSafeInteger(s) || s < 0) throw new RangeError(`${where}: options.dropoutSeed must be a non-negative safe integer, got ${show(s)}`);
        seed = s;
      } else {
        seed = Math.floor(this.dropoutRandom.next() * 2 ** 32) * 2 ** 21 + Math.floor(this.dropoutRandom.next() * 2 ** 21);
      }
      const d: NativeDropout = { seed, ...dropout };
      call.dropout = d;
    }
    const stack = this.stack(where);
    const finish = (r: NativeStackResult | NativeStackStatesResult): ForwardResult => {
      const W = this.outputWidth, P = def.outputSize, D = def.numDirections, L = def.numLayers;
      // The last output: the top layer's final state of each direction, merged.
      let last: TensorData | undefined;
      if (!this.returnSequences || (training && merge === 'mul')) {
        last = given && !this.returnSequences ? given.data : this.newArray(batch * W);
        const top = (L - 1) * D;
        const fw = r.hN.subarray(top * batch * P, (top + 1) * batch * P);
        const bw = D === 2 ? r.hN.subarray((top + 1) * batch * P, (top + 2) * batch * P) : fw;
        for (let b = 0; b < batch; b++) {
          for (let j = 0; j < P; j++) {
            const f = fw[b * P + j], g = bw[b * P + j];
            if (merge === 'concat' || merge === 'none') {
              last[b * W + j] = f;
              if (D === 2) last[b * W + P + j] = g;
            } else {
              last[b * W + j] = merge === 'sum' ? f + g : merge === 'mul' ? f * g : (f + g) / 2;
            }
          }
        }
      }
      const output = given ?? (this.returnSequences
        ? Tensor.from(r.y!, [batch, steps, W])
        : Tensor.from(last!, [batch, W]));
      const result: ForwardResult = { output, states: this.returnState ? this.statesOut(r.hN, r.cN, batch) : [] };
      if (carry) this.carried = { h: r.hN.slice(), c: r.cN?.slice(), batch };
      if (merge === 'none') result.outputs = this.splitDirections(output, P);
      if (training) {
        const nativeRun = r.run!;
        const run: TrainingRun = Object.freeze({
          release: () => native.releaseRun(nativeRun),
          layer: this, batch, steps, bytes: r.runBytes ?? 0, versionKey: this.stackDef().versionKey(), native: r.run!,
          lastOutputs: training && merge === 'mul' ? r.hN.slice() : undefined,
        });
        issuedRuns.set(run, this);
        this.trackRun(r.run!);
        result.run = run;
      }
      return result;
    };
    return { stack, call, finish };
  }

  /** [.., 2P] → the two halves [.., P]. */
  private splitDirections(t: Tensor, P: number): Tensor[] {
    const rows = t.size / (2 * P);
    const halves = [this.newArray(rows * P), this.newArray(rows * P)];
    for (let r = 0; r < rows; r++) {
      halves[0].set(t.data.subarray(r * 2 * P, r * 2 * P + P), r * P);
      halves[1].set(t.data.subarray(r * 2 * P + P, (r + 1) * 2 * P), r * P);
    }
    const shape = [...t.shape.slice(0, -1), P];
    return halves.map((h) => Tensor.from(h, shape));
  }

  /** Runs the whole sequence (all layers and directions) synchronously. x: [batch, steps, inputSize]. */
  forward(x: Tensor, options?: ForwardOptions): ForwardResult {
    const { stack, call, finish } = this.prepare(x, options, 'forward');
    return finish(native.stackForward(stack, call));
  }

  /**
   * Same as forward, computed on the libuv thread pool: the event loop only converts the input
   * (O(input)); the prepared weights are shared, never copied.
   */
  async forwardAsync(x: Tensor, options?: ForwardOptions): Promise<ForwardResult> {
    const { stack, call, finish } = this.prepare(x, options, 'forwardAsync');
    return finish(await native.stackForwardAsync(stack, call));
  }

  private prepareBackward(run: unknown, dOutput: unknown, options: BackwardOptions | undefined, method: string) {
    const where = `${this.className}.${method}`;
    if (typeof run !== 'object' || run === null || issuedRuns.get(run) !== this) {
      throw new TypeError(
        `${where}: run must be the .run of a forward(x, { training: true }) of this layer, got ${typeof run === 'object' && run !== null ? 'an object this layer did not issue (not a training run of this layer)' : show(run)}`,
      );
    }
    if (options !== undefined) checkOptions(options, `${where}: options`, BACKWARD_OPTIONS);
    const r = run as TrainingRun;
    const def = this.stackDef();
    if (r.versionKey !== def.versionKey()) {
      throw new Error(
        `${where}: stale run: the layer's weights changed after this run's forward (an optimizer step, loadStateDict or markWeightsChanged()); run forward again with the current weights`,
      );
    }
    const { batch, steps } = r;
    const W = this.outputWidth, P = def.outputSize, D = def.numDirections, L = def.numLayers, LD = L * D;
    const merge = this.mergeMode();
    const call: { dy?: NativeArray; dhN?: NativeArray; dcN?: NativeArray } = {};
    if (options?.dStates !== undefined && options.dStates !== null) {
      [call.dhN, call.dcN] = this.statesIn(options.dStates, `${where}: options.dStates`, batch, true);
      if (call.dhN) call.dhN = call.dhN.slice();
    }
    if (dOutput !== null && dOutput !== undefined) {
      let d: Tensor;
      if (merge === 'none' && Array.isArray(dOutput)) {
        const shape = this.returnSequences ? [batch, steps, P] : [batch, P];
        const names = this.returnSequences ? ['batch', 'steps', def.outputSizeName] : ['batch', def.outputSizeName];
        const halves = [0, 1].map((i) => checkTensor(dOutput[i], `${where}: dOutput[${i}]`, shape, names, this.dtype).data);
        const rows = halves[0].length / P;
        const joined = this.newArray(rows * 2 * P);
        for (let q = 0; q < rows; q++) {
          joined.set(halves[0].subarray(q * P, (q + 1) * P), q * 2 * P);
          joined.set(halves[1].subarray(q * P, (q + 1) * P), q * 2 * P + P);
        }
        d = Tensor.from(joined, [...shape.slice(0, -1), 2 * P]);
      } else if (this.returnSequences) {
        d = checkTensor(dOutput, `${where}: dOutput`, [batch, steps, W], ['batch', 'steps', this.outputWidthName], this.dtype);
      } else {
        d = checkTensor(dOutput, `${where}: dOutput`, [batch, W], ['batch', this.outputWidthName], this.dtype);
      }
      if (this.returnSequences) {
        call.dy = d.data;
      } else {
        // The last output is the top layer's final states: its gradient joins dh_N there.
        const dhN = (call.dhN ??= this.newArray(LD * batch * P));
        const top = (L - 1) * D;
        const saved = r.lastOutputs;
        for (let b = 0; b < batch; b++) {
          for (let j = 0; j < P; j++) {
            for (let dir = 0; dir < D; dir++) {
              const g = merge === 'concat' || merge === 'none' ? d.data[b * W + dir * P + j] : d.data[b * W + j];
              let v = g;
              if (merge === 'ave') v = g / 2;
              else if (merge === 'mul') v = g * saved![((top + 1 - dir) * batch + b) * P + j];
              dhN[((top + dir) * batch + b) * P + j] += v;
            }
          }
        }
      }
    }
    const finish = (g: NativeStackGradients): Gradients => {
      const I = this.inputSize;
      const initialState = this.statesOut(g.dh0, g.dc0, batch);
      return {
        input: Tensor.from(g.dx!, [batch, steps, I]),
        initialState,
        params: def.gradients(g.grads),
      };
    };
    return { native: r.native, call, finish };
  }

  /**
   * Backpropagation through time for a training run. dOutput matches `output` (or null when only the
   * final states carry gradient); options.dStates match `states`.
   */
  backward(run: TrainingRun, dOutput: Tensor | Tensor[] | null, options?: BackwardOptions): Gradients {
    const p = this.prepareBackward(run, dOutput, options, 'backward');
    return p.finish(native.stackBackward(p.native, p.call));
  }

  /** Same as backward, computed on the libuv thread pool. */
  async backwardAsync(run: TrainingRun, dOutput: Tensor | Tensor[] | null, options?: BackwardOptions): Promise<Gradients> {
    const p = this.prepareBackward(run, dOutput, options, 'backwardAsync');
    return p.finish(await native.stackBackwardAsync(p.native, p.call));
  }
}
