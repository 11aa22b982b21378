// Weight initializers (Keras defaults) driven by a small seedable generator, so a seed reproduces a model.
import { native } from './native.js';
import { checkOptions, seedOption, show } from './options.js';
import type { DType } from './tensor.js';

/** mulberry32: a tiny, fast, seedable 32-bit generator; uniform in [0, 1). */
export class Random {
  private state: number;
  /** seed: a safe integer (used modulo 2^32); default a random one. */
  constructor(seed?: number) {
    this.state = (seedOption(seed, 'Random: seed') ?? (Math.random() * 2 ** 32)) >>> 0;
  }
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** A number in [lo, hi) (lo, hi finite numbers with a finite difference). */
  uniform(lo: number, hi: number): number {
    if (typeof lo !== 'number' || typeof hi !== 'number') {
      const [name, v] = typeof lo !== 'number' ? ['lo', lo] : ['hi', hi];
      throw new TypeError(`Random#uniform: ${name}: expected a finite number, got ${show(v)}`);
    }
    if (!Number.isFinite(hi - lo)) {
      const [name, v] = !Number.isFinite(lo) ? ['lo', lo] : !Number.isFinite(hi) ? ['hi', hi] : ['hi - lo', hi - lo];
      throw new RangeError(`Random#uniform: ${name}: expected a finite number, got ${v}`);
    }
    return lo + (hi - lo) * this.next();
  }
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  /** An integer in [0, n). */
  int(n: number): number {
    if (typeof n !== 'number') throw new TypeError(`Random#int: n: expected a positive integer, got ${show(n)}`);
    if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`Random#int: n: expected a positive integer, got ${n}`);
    return Math.floor(this.next() * n);
  }
}

/** Glorot/Xavier uniform for a [fanOut, fanIn] matrix, written into out. */
export function glorotUniform(out: Float32Array | Float64Array, fanOut: number, fanIn: number, rng: Random): void {
  const limit = Math.sqrt(6 / (fanIn + fanOut));
  for (let i = 0; i < out.length; i++) out[i] = rng.uniform(-limit, limit);
}

/**
 * Orthogonal initialisation of `blocks` stacked [n, n] blocks (one per gate of a recurrent matrix),
 * each from modified Gram–Schmidt on a Gaussian matrix.
 */
export function orthogonalBlocks(out: Float32Array | Float64Array, blocks: number, n: number, rng: Random): void {
  const q = new Float64Array(blocks * n * n);
  for (let i = 0; i < q.length; i++) q[i] = rng.normal();
  native.orthonormalizeRows(q, n, blocks);  // Gram–Schmidt in double with level-3 BLAS: O(n³) belongs in native code
  out.set(q);
}

/**
 * How a parameter starts: 'glorotUniform' (Keras kernels), 'glorotNormal' (tfjs kernels),
 * 'orthogonal' (Keras recurrent kernels), 'identity' (IRNN, Le et al. 2015: each gate block an
 * identity; square blocks only), 'zeros', 'ones', 'pytorch' (PyTorch's U(−1/√units, 1/√units)),
 * { name: 'uniform', limit } or { name: 'constant', value }.
 */
export type Initializer =
  | 'glorotUniform'
  | 'glorotNormal'
  | 'orthogonal'
  | 'identity'
  | 'zeros'
  | 'ones'
  | 'pytorch'
  | { name: 'uniform'; limit: number }
  | { name: 'constant'; value: number };

const INITIALIZER_NAMES = ['glorotUniform', 'glorotNormal', 'orthogonal', 'identity', 'zeros', 'ones', 'pytorch', 'uniform', 'constant'];

/** The largest magnitude a float32 holds (what rounds above it becomes ±Infinity). */
const FLOAT32_MAX = 3.4028234663852886e38;

/**
 * Checks an initializer option for a layer of `dtype`; `what` names it in errors. A malformed one is
 * a TypeError; a limit or value the dtype cannot hold (it would initialise ±Infinity) is a RangeError.
 */
export function checkInitializer(init: unknown, what: string, dtype: DType): Initializer {
  if (typeof init === 'string' && INITIALIZER_NAMES.includes(init) && init !== 'uniform' && init !== 'constant') return init as Initializer;
  if (init !== null && typeof init === 'object' && !Array.isArray(init)) {
    const o = init as { name?: unknown; limit?: unknown; value?: unknown };
    if (o.name === 'uniform' || o.name === 'constant') {
      const key = o.name === 'uniform' ? 'limit' : 'value';
      checkOptions(init, what, ['name', key]);
      const v = o[key];
      if (typeof v === 'number' && Number.isFinite(v) && (key === 'value' || v >= 0)) {
        // uniform draws from lo + (hi − lo)·u, so a float64 limit needs 2·limit finite.
        const fits = dtype === 'float32' ? Number.isFinite(Math.fround(v)) : key === 'value' || Number.isFinite(2 * v);
        if (!fits) {
          throw new RangeError(
            dtype === 'float32'
              ? `${what}.${key}: ${v} does not fit a float32 layer (|${key}| must be at most ${FLOAT32_MAX}; beyond it the weights would be Infinity)`
              : `${what}.limit: ${v} is too large (2·limit must be finite: limit at most ${Number.MAX_VALUE / 2})`,
          );
        }
        return init as Initializer;
      }
      throw new TypeError(`${what}.${key}: expected a finite number${key === 'limit' ? ' >= 0' : ''}, got ${show(v)}`);
    }
  }
  throw new TypeError(
    `${what}: expected one of 'glorotUniform', 'glorotNormal', 'orthogonal', 'identity', 'zeros', 'ones', 'pytorch', ` +
      `{ name: 'uniform', limit >= 0 } or { name: 'constant', value }, got ${show(init)}`,
  );
}

/**
 * Fills `out`, `blocks` stacked [rows, cols] blocks (one per gate), with `init`. `units` is the
 * layer's hidden size (for 'pytorch').
 */
export function initialize(
  out: Float32Array | Float64Array,
  init: Initializer,
  blocks: number,
  rows: number,
  cols: number,
  units: number,
  rng: Random,
  what: string,
): void {
  const block = rows * cols;
  if (typeof init === 'object') {
    if (init.name === 'constant') out.fill(init.value);
    else for (let i = 0; i < out.length; i++) out[i] = rng.uniform(-init.limit, init.limit);
    return;
  }
  switch (init) {
    case 'zeros':
      out.fill(0);
      return;
    case 'ones':
      out.fill(1);
      return;
    case 'pytorch': {
      const k = 1 / Math.sqrt(units);
      for (let i = 0; i < out.length; i++) out[i] = rng.uniform(-k, k);
      return;
    }
    case 'glorotUniform':
      for (let b = 0; b < blocks; b++) glorotUniform(out.subarray(b * block, (b + 1) * block), rows, cols, rng);
      return;
    case 'glorotNormal': {
      // Keras/tfjs: truncated normal (within 2σ) with σ = sqrt(2 / (fanIn + fanOut)) / .87962566
      const sd = Math.sqrt(2 / (rows + cols)) / 0.87962566103423978;
      for (let i = 0; i < out.length; i++) {
        let v: number;
        do v = rng.normal(); while (Math.abs(v) > 2);
        out[i] = v * sd;
      }
      return;
    }
    case 'orthogonal':
    case 'identity':
      if (rows !== cols) throw new RangeError(`${what}: '${init}' needs square gate blocks, got [${rows}, ${cols}]`);
      if (init === 'orthogonal') orthogonalBlocks(out, blocks, rows, rng);
      else {
        out.fill(0);
        for (let b = 0; b < blocks; b++) for (let i = 0; i < rows; i++) out[b * block + i * cols + i] = 1;
      }
      return;
  }
}
