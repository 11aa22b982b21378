// A minimal dense tensor: a typed array and a row-major shape. Data is used in place, not copied.
import { show } from './options.js';

export type DType = 'float32' | 'float64';
export type TensorData = Float32Array | Float64Array;

export function dtypeOf(data: TensorData): DType {
  return data instanceof Float64Array ? 'float64' : 'float32';
}

export function shapeSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * The most elements one tensor (or parameter, or buffer the library allocates) may have: what a
 * typed array can hold in Node (V8's limit is 2^32 elements). Checked before allocating.
 */
export const MAX_ELEMENTS = 2 ** 32;

/**
 * Throws a RangeError unless `n` elements fit one typed array. `what` names the option or argument
 * and `detail` says what would have those elements (e.g. 'parameter weight_ih_l0 [12, 4]').
 */
export function checkElementCount(n: number, what: string, detail: string): void {
  if (!(n <= MAX_ELEMENTS)) {
    throw new RangeError(`${what}: ${detail} would have ${n} elements, more than a typed array can hold (at most ${MAX_ELEMENTS})`);
  }
}

/** A new zero-filled array of `dtype` with n elements, after checking that n fits (see checkElementCount). */
export function newTypedArray(dtype: DType, n: number, what: string, detail: string): TensorData {
  checkElementCount(n, what, detail);
  return dtype === 'float64' ? new Float64Array(n) : new Float32Array(n);
}

/**
 * The element count of a typed array, read from its byteLength: V8's optimized code may read a
 * detached array's .length as its old length (Node 20), while byteLength reads 0.
 */
export function elementCount(data: TensorData): number {
  return data.byteLength / data.BYTES_PER_ELEMENT;
}

function isDetachedBuffer(buffer: ArrayBufferLike): boolean {
  const flag = (buffer as { detached?: unknown }).detached;  // ArrayBuffer.prototype.detached (Node 22+)
  if (typeof flag === 'boolean') return flag;
  if (buffer.byteLength !== 0) return false;
  try {
    new Uint8Array(buffer);  // throws only for a detached buffer
    return false;
  } catch {
    return true;
  }
}

/**
 * Why `data` cannot be used: 'detached' (its ArrayBuffer was transferred), 'outOfBounds' (a view over
 * a resizable ArrayBuffer shrunk below it), or undefined when its memory is there.
 */
export function bufferProblem(data: TensorData): 'detached' | 'outOfBounds' | undefined {
  const buffer = data.buffer;
  if (isDetachedBuffer(buffer)) return 'detached';
  if (data.byteLength === 0 && (buffer as { resizable?: unknown }).resizable === true) {
    try {
      data.at(0);  // validates the view: throws when it is out of bounds of its buffer
    } catch {
      return 'outOfBounds';
    }
  }
  return undefined;
}

/** The message part for a bufferProblem. */
export function describeBufferProblem(problem: 'detached' | 'outOfBounds'): string {
  return problem === 'detached'
    ? 'its ArrayBuffer is detached (was it transferred?)'
    : 'its data lies outside its resizable ArrayBuffer (was the buffer shrunk below the view?)';
}

/** Throws a TypeError naming `where` unless shape is an array of non-negative safe integers. */
function checkShape(shape: unknown, where: string): asserts shape is readonly number[] {
  if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    const got = Array.isArray(shape) ? `[${shape.map((d) => show(d)).join(', ')}]` : show(shape);
    throw new TypeError(`${where}: shape must be an array of non-negative integers, got ${got}`);
  }
}

function checkDType(dtype: unknown, where: string): void {
  if (dtype !== 'float32' && dtype !== 'float64') throw new TypeError(`${where}: dtype must be 'float32' or 'float64', got ${show(dtype)}`);
}

export function formatShape(shape: readonly (number | string)[]): string {
  return `[${shape.join(', ')}]`;
}

export class Tensor {
  readonly data: TensorData;
  readonly shape: readonly number[];
  /** Only tensors made by this class have it (Object.create(Tensor.prototype) passes instanceof). */
  readonly #brand = true;

  private constructor(data: TensorData, shape: readonly number[]) {
    this.data = data;
    this.shape = Object.freeze([...shape]);
    // data and shape never change, so what a check has read stays what a call uses.
    Object.freeze(this);
  }

  /** Whether v is a Tensor made by Tensor.from / Tensor.zeros / clone (not a forged object). */
  static isTensor(v: unknown): v is Tensor {
    return typeof v === 'object' && v !== null && #brand in v;
  }

  get dtype(): DType {
    return dtypeOf(this.data);
  }

  get size(): number {
    return elementCount(this.data);
  }

  get rank(): number {
    return this.shape.length;
  }

  /**
   * Wraps `data` (used in place) with `shape`. A plain number array is copied into a Float32Array
   * (or Float64Array when dtype is 'float64'); every element must be a number (NaN and ±Infinity are).
   */
  static from(data: TensorData | readonly number[], shape: readonly number[], dtype?: DType): Tensor {
    checkShape(shape, 'Tensor.from');
    if (dtype !== undefined) checkDType(dtype, 'Tensor.from');
    let typed: TensorData;
    if (data instanceof Float32Array || data instanceof Float64Array) {
      if (dtype !== undefined && dtype !== dtypeOf(data)) {
        throw new TypeError(`Tensor.from: data is a ${dtypeOf(data) === 'float64' ? 'Float64Array' : 'Float32Array'} but dtype '${dtype}' was asked for`);
      }
      typed = data;
    } else if (Array.isArray(data)) {
      const values = data as readonly unknown[];
      for (let i = 0; i < values.length; i++) {
        const v = values[i];
        if (typeof v !== 'number') throw new TypeError(`Tensor.from: data[${i}] must be a number, got ${show(v)}`);
      }
      typed = dtype === 'float64' ? Float64Array.from(data as readonly number[]) : Float32Array.from(data as readonly number[]);
    } else {
      throw new TypeError('Tensor.from: data must be a Float32Array, a Float64Array or an array of numbers');
    }
    const expected = shapeSize(shape);
    const length = elementCount(typed);
    if (length !== expected) {
      const problem = expected > 0 && length === 0 ? bufferProblem(typed) : undefined;
      throw new RangeError(
        problem === 'detached'
          ? `Tensor.from: data's ArrayBuffer is detached (was it transferred?); expected ${expected} elements for shape ${formatShape(shape)}`
          : problem === 'outOfBounds'
            ? `Tensor.from: data lies outside its resizable ArrayBuffer (was the buffer shrunk below the view?); expected ${expected} elements for shape ${formatShape(shape)}`
            : `Tensor.from: shape ${formatShape(shape)} needs ${expected} elements, data has ${length}`,
      );
    }
    return new Tensor(typed, shape);
  }

  static zeros(shape: readonly number[], dtype: DType = 'float32'): Tensor {
    checkShape(shape, 'Tensor.zeros');
    checkDType(dtype, 'Tensor.zeros');
    const n = shapeSize(shape);
    return new Tensor(newTypedArray(dtype, n, 'Tensor.zeros', `shape ${formatShape(shape)}`), shape);
  }

  /** A copy with its own buffer. */
  clone(): Tensor {
    if (!Tensor.isTensor(this)) throw new TypeError('Tensor#clone: this is not a Tensor made by Tensor.from or Tensor.zeros');
    const data = this.data;
    if (elementCount(data) === 0) {
      const problem = bufferProblem(data);
      if (problem && shapeSize(this.shape) > 0) throw new TypeError(`Tensor#clone: ${describeBufferProblem(problem)}`);
      // Nothing to copy (slice would refuse a detached buffer even then).
      return new Tensor(data instanceof Float64Array ? new Float64Array(0) : new Float32Array(0), this.shape);
    }
    return new Tensor(data.slice(), this.shape);
  }

  /** Nested JavaScript arrays (for printing and small tests). */
  toArray(): unknown {
    const build = (offset: number, dim: number): unknown => {
      if (dim === this.shape.length) return this.data[offset];
      const stride = shapeSize(this.shape.slice(dim + 1));
      return Array.from({ length: this.shape[dim] }, (_, i) => build(offset + i * stride, dim + 1));
    };
    return build(0, 0);
  }
}

/**
 * Throws a TypeError/RangeError naming `what` unless `t` is a Tensor of `dtype` with exactly `shape`
 * (a real one: Tensor.isTensor; its data and shape are frozen, so the caller may read them again).
 */
export function checkTensor(
  t: unknown,
  what: string,
  shape: readonly number[],
  names: readonly string[],
  dtype: DType,
): Tensor {
  const expected = formatShape(shape.map((d, i) => (names[i] ? `${names[i]}=${d}` : d)));
  if (!Tensor.isTensor(t)) {
    throw new TypeError(`${what}: expected a Tensor of shape ${expected}, got ${describe(t)}`);
  }
  const data = t.data, tshape = t.shape;
  if (dtypeOf(data) !== dtype) {
    throw new TypeError(`${what}: expected dtype ${dtype}, got ${dtypeOf(data)}`);
  }
  const length = elementCount(data);
  if (length === 0 && shapeSize(tshape) > 0) {
    const problem = bufferProblem(data);
    if (problem) throw new TypeError(`${what}: ${describeBufferProblem(problem)}`);
  }
  if (typeof SharedArrayBuffer !== 'undefined' && data.buffer instanceof SharedArrayBuffer) {
    throw new TypeError(
      `${what}: data over a SharedArrayBuffer is not accepted (another thread could change it during the call); copy it into a regular ${dtypeOf(data) === 'float64' ? 'Float64Array' : 'Float32Array'}`,
    );
  }
  if (tshape.length !== shape.length) {
    throw new RangeError(`${what}: expected rank ${shape.length} with shape ${expected}, got shape ${formatShape(tshape)}`);
  }
  for (let i = 0; i < shape.length; i++) {
    if (tshape[i] !== shape[i]) {
      throw new RangeError(`${what}: expected shape ${expected}, got ${formatShape(tshape)}`);
    }
  }
  if (length !== shapeSize(shape)) {
    throw new RangeError(`${what}: expected ${shapeSize(shape)} elements, got ${length}`);
  }
  return t;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an Array';
  if (v instanceof Tensor) return 'an object made from Tensor.prototype, not by Tensor.from or Tensor.zeros';
  if (typeof v === 'object') {
    const name: unknown = (v as object).constructor?.name;
    return typeof name === 'string' && name !== '' ? name : 'an object';
  }
  return typeof v;
}
