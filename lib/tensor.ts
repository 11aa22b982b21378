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

  private constructor(data: TensorData, shape: readonly number[]) {
    this.data = data;
    this.shape = Object.freeze([...shape]);
  }

  get dtype(): DType {
    return dtypeOf(this.data);
  }

  get size(): number {
    return this.data.length;
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
        throw new TypeError(`Tensor.from: data is a ${data.constructor.name} but dtype '${dtype}' was asked for`);
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
    if (typed.length !== expected) {
      const detached = typed.length === 0 && typed.buffer.byteLength === 0 && expected > 0;
      throw new RangeError(
        detached
          ? `Tensor.from: data's ArrayBuffer is detached (was it transferred?); expected ${expected} elements for shape ${formatShape(shape)}`
          : `Tensor.from: shape ${formatShape(shape)} needs ${expected} elements, data has ${typed.length}`,
      );
    }
    return new Tensor(typed, shape);
  }

  static zeros(shape: readonly number[], dtype: DType = 'float32'): Tensor {
    checkShape(shape, 'Tensor.zeros');
    checkDType(dtype, 'Tensor.zeros');
    const n = shapeSize(shape);
    return new Tensor(dtype === 'float64' ? new Float64Array(n) : new Float32Array(n), shape);
  }

  /** A copy with its own buffer. */
  clone(): Tensor {
    return new Tensor(this.data.slice(), this.shape);
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

/** Throws a TypeError/RangeError naming `what` unless `t` is a Tensor of `dtype` with exactly `shape`. */
export function checkTensor(
  t: unknown,
  what: string,
  shape: readonly number[],
  names: readonly string[],
  dtype: DType,
): Tensor {
  const expected = formatShape(shape.map((d, i) => (names[i] ? `${names[i]}=${d}` : d)));
  if (!(t instanceof Tensor)) {
    throw new TypeError(`${what}: expected a Tensor of shape ${expected}, got ${describe(t)}`);
  }
  if (t.dtype !== dtype) {
    throw new TypeError(`${what}: expected dtype ${dtype}, got ${t.dtype}`);
  }
  if (t.data.length === 0 && t.data.buffer.byteLength === 0 && shapeSize(t.shape) > 0) {
    throw new TypeError(`${what}: its ArrayBuffer is detached (was it transferred?)`);
  }
  if (typeof SharedArrayBuffer !== 'undefined' && t.data.buffer instanceof SharedArrayBuffer) {
    throw new TypeError(
      `${what}: data over a SharedArrayBuffer is not accepted (another thread could change it during the call); copy it into a regular ${t.data.constructor.name}`,
    );
  }
  if (t.rank !== shape.length) {
    throw new RangeError(`${what}: expected rank ${shape.length} with shape ${expected}, got shape ${formatShape(t.shape)}`);
  }
  for (let i = 0; i < shape.length; i++) {
    if (t.shape[i] !== shape[i]) {
      throw new RangeError(`${what}: expected shape ${expected}, got ${formatShape(t.shape)}`);
    }
  }
  if (t.data.length !== shapeSize(shape)) {
    throw new RangeError(`${what}: expected ${shapeSize(shape)} elements, got ${t.data.length}`);
  }
  return t;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an Array';
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'an object';
  return typeof v;
}
