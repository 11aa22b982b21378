// The safetensors format (https://github.com/huggingface/safetensors), read and written by hand:
//
//   [8 bytes]  N, a little-endian u64: the size of the header
//   [N bytes]  the header, UTF-8 JSON: { "<name>": { "dtype": "F32", "shape": [2, 3],
//              "data_offsets": [begin, end] }, ..., "__metadata__": { "<key>": "<string>" } },
//              padded with spaces so that the data starts at a multiple of 8
//   [rest]     the data buffer: every tensor's bytes, little-endian, row-major; offsets are relative
//              to the start of this buffer, and the tensors cover it exactly (no holes, no overlaps,
//              nothing after the last one).
//
// No npm package is used: `safetensors` on npm is a single 0.0.1 release without a repository, and
// the format is small enough to validate completely here. The decoder refuses everything the
// reference (Rust) implementation refuses, with a message naming the file and the tensor.
import { readFile } from 'node:fs/promises';

import { writeFileAtomic } from './files.js';

/**
 * A safetensors dtype name (the spec's spelling). rnnkit reads F32, F64, F16 and BF16 (both widened
 * exactly to float32), I32, I64 (as numbers, when every value is a safe integer) and U8, and writes
 * F32, F64, I32 and U8. The other names are
 * recognised (so that the sizes in a file can be checked) but refused as unsupported when read.
 */
export type SafeDType =
  | 'BOOL' | 'U8' | 'I8' | 'F8_E5M2' | 'F8_E4M3' | 'F8_E8M0'
  | 'I16' | 'U16' | 'F16' | 'BF16'
  | 'I32' | 'U32' | 'F32'
  | 'F64' | 'I64' | 'U64';

/**
 * One tensor: its dtype, its row-major shape ([] for a scalar) and its elements.
 *
 * The data's type follows the dtype: F32 → Float32Array, F64 → Float64Array, I32 → Int32Array,
 * U8 → Uint8Array, F16 and BF16 → Float32Array (the tensor keeps its dtype name). A decoded I64 tensor keeps dtype 'I64' and holds its (safe-integer) values in a
 * Float64Array; it cannot be written back as I64.
 */
export interface SafeTensor {
  dtype: SafeDType;
  shape: number[];
  data: Float32Array | Float64Array | Int32Array | Uint8Array;
}

/** The largest header decodeSafetensors accepts, in bytes (the reference implementation's limit). */
export const MAX_HEADER_BYTES = 100_000_000;

/**
 * A malformed, truncated or unsupported safetensors file (or tensors that cannot be encoded). The
 * message starts with the file and, where one is concerned, names the tensor; both are also fields.
 */
export class SafetensorsError extends Error {
  /** The file (or, when encoding, '<encode>'). */
  readonly file: string;
  /** The tensor concerned, if any. */
  readonly tensor: string | undefined;

  constructor(file: string, tensor: string | undefined, message: string) {
    super(`${file}: ${tensor === undefined ? '' : `tensor ${JSON.stringify(tensor)}: `}${message}`);
    this.name = 'SafetensorsError';
    this.file = file;
    this.tensor = tensor;
  }
}

/** Bytes per element of every known dtype. */
const DTYPE_SIZE: Record<SafeDType, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, F8_E8M0: 1,
  I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4,
  F64: 8, I64: 8, U64: 8,
};

/**
 * The order of the reference implementation's Dtype enum (which it sorts tensors by, descending,
 * before their names, so that larger alignments come first). Only the writable dtypes are needed.
 */
const WRITE_RANK: Partial<Record<SafeDType, number>> = { U8: 0, I32: 1, F32: 2, F64: 3 };

/** The typed array each writable dtype takes. */
const WRITE_ARRAY = {
  F32: Float32Array,
  F64: Float64Array,
  I32: Int32Array,
  U8: Uint8Array,
} as const;

const READABLE = ['F32', 'F64', 'F16', 'BF16', 'I32', 'I64', 'U8'];

/** Whether this host stores numbers little-endian (then typed arrays are copied byte for byte). */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const METADATA_KEY = '__metadata__';

function isKnownDType(s: unknown): s is SafeDType {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_SIZE, s);
}

function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Sets an own property (also for the name '__proto__', which plain assignment would not create). */
function define<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  try {
    const s = JSON.stringify(v);
    if (s !== undefined) return s.length > 80 ? `${s.slice(0, 77)}...` : s;
  } catch { /* fall through */ }
  return String(v);
}

/** Elements of a (validated) shape, as a bigint so that no product overflows. */
function elementCount(shape: readonly number[]): bigint {
  let n = 1n;
  for (const d of shape) n *= BigInt(d);
  return n;
}

/**
 * Encodes tensors (and optional string metadata) as a safetensors file.
 *
 * The layout is the reference implementation's: tensors ordered by dtype (F64, F32, I32, U8) and then
 * by name (UTF-8 byte order), `__metadata__` first in the header (only when `metadata` is given, its
 * keys sorted), the header compact JSON padded with spaces to a multiple of 8 bytes, data
 * little-endian. Throws a SafetensorsError (file '<encode>') for a dtype other than F32, F64, I32 or
 * U8, a data array of the wrong type or length, a shape that is not non-negative integers, a tensor
 * named '__metadata__' or metadata that is not string → string. The data is copied; nothing given is
 * modified.
 */
export function encodeSafetensors(tensors: Record<string, SafeTensor>, metadata?: Record<string, string>): Buffer {
  const where = '<encode>';
  const names = Object.keys(tensors);
  const entries = names.map((name) => {
    const t = tensors[name];
    if (name === METADATA_KEY) throw new SafetensorsError(where, name, `the name ${METADATA_KEY} is reserved for the metadata`);
    if (!isPlainObject(t)) throw new SafetensorsError(where, name, `not a tensor object: ${describe(t)}`);
    const dtype = t.dtype;
    const rank = WRITE_RANK[dtype];
    if (rank === undefined) {
      throw new SafetensorsError(where, name, `cannot write dtype ${describe(dtype)} (rnnkit writes ${Object.keys(WRITE_ARRAY).join(', ')})`);
    }
    const Ctor = WRITE_ARRAY[dtype as keyof typeof WRITE_ARRAY];
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new SafetensorsError(where, name, `shape must be an array of non-negative integers, got ${describe(t.shape)}`);
    }
    if (!(t.data instanceof Ctor)) {
      throw new SafetensorsError(where, name, `dtype ${dtype} needs a ${Ctor.name}, got ${t.data?.constructor?.name ?? typeof t.data}`);
    }
    const count = elementCount(t.shape);
    if (BigInt(t.data.length) !== count) {
      throw new SafetensorsError(where, name, `shape [${t.shape.join(', ')}] has ${count} elements, the data has ${t.data.length}`);
    }
    return { name, dtype, rank, shape: [...t.shape], data: t.data };
  });
  entries.sort((a, b) => b.rank - a.rank || compareUtf8(a.name, b.name));

  const parts: string[] = [];
  if (metadata !== undefined) {
    if (!isPlainObject(metadata)) throw new SafetensorsError(where, undefined, `metadata must be an object of strings, got ${describe(metadata)}`);
    const keys = Object.keys(metadata).sort(compareUtf8);
    for (const k of keys) {
      if (typeof metadata[k] !== 'string') throw new SafetensorsError(where, undefined, `metadata ${JSON.stringify(k)} must be a string, got ${describe(metadata[k])}`);
    }
    parts.push(`${JSON.stringify(METADATA_KEY)}:{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`).join(',')}}`);
  }
  let offset = 0;
  const placed = entries.map((e) => {
    const begin = offset;
    offset += e.data.byteLength;
    parts.push(`${JSON.stringify(e.name)}:{"dtype":${JSON.stringify(e.dtype)},"shape":[${e.shape.join(',')}],"data_offsets":[${begin},${offset}]}`);
    return { ...e, begin };
  });
  let header = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  const pad = (8 - (header.length % 8)) % 8;
  if (pad) header = Buffer.concat([header, Buffer.alloc(pad, 0x20)]);

  const out = Buffer.alloc(8 + header.length + offset);
  out.writeBigUInt64LE(BigInt(header.length), 0);
  header.copy(out, 8);
  const base = 8 + header.length;
  for (const e of placed) writeLE(out, base + e.begin, e.data);
  return out;
}

function writeLE(out: Buffer, at: number, data: Float32Array | Float64Array | Int32Array | Uint8Array): void {
  if (LITTLE_ENDIAN || data instanceof Uint8Array) {
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at);
    return;
  }
  const view = new DataView(out.buffer, out.byteOffset + at, data.byteLength);
  for (let i = 0; i < data.length; i++) {
    if (data instanceof Float32Array) view.setFloat32(4 * i, data[i], true);
    else if (data instanceof Float64Array) view.setFloat64(8 * i, data[i], true);
    else view.setInt32(4 * i, data[i], true);
  }
}

interface Entry {
  name: string;
  dtype: SafeDType;
  shape: number[];
  begin: number;
  end: number;
}

/**
 * Decodes and fully validates a safetensors file held in `bytes`; `file` names it in error messages.
 *
 * Returns every tensor (F32, F64, I32, U8 as the matching typed array; I64 as a Float64Array of its
 * values, refused if one is not a safe integer) and the metadata ({} when the file has none). The
 * arrays are fresh copies (aligned, independent of `bytes`), in the host's byte order (the file is
 * little-endian; on a big-endian host the values are converted).
 *
 * Throws a SafetensorsError naming the file (and the tensor, where one is concerned) when the file is
 * shorter than 8 bytes; the header size exceeds MAX_HEADER_BYTES or the file ("oversized header");
 * the header is not UTF-8, not JSON or not an object; `__metadata__` is not string → string; an entry
 * lacks dtype, shape or data_offsets (other fields are ignored, as the reference does); a dtype is
 * unknown; a shape is not an array of non-negative integers; data_offsets are not [begin, end]
 * integers with begin ≤ end; a tensor's byte length is not product(shape) · dtype size; offsets lie
 * past the data buffer ("truncated: … expects N bytes, has M"); tensors overlap or leave a hole; bytes
 * follow the last tensor; or a dtype is known but unsupported (F16, BF16, …).
 */
export function decodeSafetensors(bytes: Uint8Array, file: string): { tensors: Record<string, SafeTensor>; metadata: Record<string, string> } {
  const fail = (tensor: string | undefined, message: string): never => {
    throw new SafetensorsError(file, tensor, message);
  };
  if (!(bytes instanceof Uint8Array)) fail(undefined, 'expected the file contents as a Uint8Array');
  if (bytes.length < 8) fail(undefined, `file too short: ${bytes.length} bytes, a safetensors file starts with an 8-byte header size`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerSize = view.getBigUint64(0, true);
  if (headerSize > BigInt(MAX_HEADER_BYTES)) fail(undefined, `oversized header: ${headerSize} bytes, more than MAX_HEADER_BYTES (${MAX_HEADER_BYTES})`);
  if (headerSize > BigInt(bytes.length - 8)) fail(undefined, `oversized header: ${headerSize} bytes, but the file has only ${bytes.length - 8} bytes after the size`);
  const n = Number(headerSize);

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    return fail(undefined, 'the header is not valid UTF-8');
  }
  if (!text.startsWith('{')) fail(undefined, `the header must be a JSON object starting with '{', got ${describe(text.slice(0, 20))}`);
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    return fail(undefined, `the header is not valid JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(header)) return fail(undefined, 'the header is not a JSON object');

  const metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  const dataLength = bytes.length - 8 - n;
  for (const name of Object.keys(header)) {
    const info = header[name];
    if (name === METADATA_KEY) {
      if (!isPlainObject(info)) fail(undefined, `${METADATA_KEY} must be an object of strings, got ${describe(info)}`);
      for (const k of Object.keys(info as object)) {
        const v = (info as Record<string, unknown>)[k];
        if (typeof v !== 'string') fail(undefined, `${METADATA_KEY} ${JSON.stringify(k)} must be a string, got ${describe(v)}`);
        define(metadata, k, v as string);
      }
      continue;
    }
    if (!isPlainObject(info)) fail(name, `the entry must be an object with dtype, shape and data_offsets, got ${describe(info)}`);
    const rec = info as Record<string, unknown>;
    for (const field of ['dtype', 'shape', 'data_offsets']) {
      if (!Object.prototype.hasOwnProperty.call(rec, field)) fail(name, `the entry has no ${field}`);
    }
    const { dtype, shape, data_offsets: offsets } = rec;
    if (!isKnownDType(dtype)) fail(name, `unknown dtype ${describe(dtype)} (known: ${Object.keys(DTYPE_SIZE).join(', ')})`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(name, `shape must be an array of non-negative integers, got ${describe(shape)}`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]) {
      fail(name, `data_offsets must be [begin, end], non-negative integers with begin <= end, got ${describe(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    const dt = dtype as SafeDType;
    const sh = shape as number[];
    const want = elementCount(sh) * BigInt(DTYPE_SIZE[dt]);
    if (BigInt(end - begin) !== want) {
      fail(name, `data_offsets [${begin}, ${end}] hold ${end - begin} bytes, but ${dt} [${sh.join(', ')}] needs ${want}`);
    }
    if (end > dataLength) {
      fail(name, `data_offsets [${begin}, ${end}] are out of the data buffer: truncated: the data buffer expects ${end} bytes (through this tensor), has ${dataLength}`);
    }
    entries.push({ name, dtype: dt, shape: [...sh], begin, end });
  }

  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  let previous: Entry | undefined;
  for (const e of sorted) {
    if (e.begin < expected) {
      fail(e.name, `data_offsets [${e.begin}, ${e.end}] overlap tensor ${JSON.stringify(previous!.name)} [${previous!.begin}, ${previous!.end}]`);
    }
    if (e.begin > expected) {
      fail(e.name, `data_offsets [${e.begin}, ${e.end}] leave a hole of ${e.begin - expected} bytes after ${previous ? `tensor ${JSON.stringify(previous.name)}` : 'the start of the data buffer'}`);
    }
    expected = e.end;
    previous = e;
  }
  if (expected !== dataLength) {
    fail(previous?.name, `the data buffer has ${dataLength} bytes, but the tensors end at byte ${expected}: ${dataLength - expected} bytes follow the last tensor`);
  }

  const base = bytes.byteOffset + 8 + n;
  const tensors: Record<string, SafeTensor> = {};
  for (const e of entries) {
    const src = new DataView(bytes.buffer, base + e.begin, e.end - e.begin);
    define(tensors, e.name, { dtype: e.dtype, shape: e.shape, data: readData(e, src, fail) });
  }
  return { tensors, metadata };
}

/** An IEEE 754 binary16 bit pattern as a number (exact). */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1, exp = (h >> 10) & 0x1f, frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac === 0 ? sign * Infinity : NaN;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

function readData(e: Entry, src: DataView, fail: (tensor: string, message: string) => never): SafeTensor['data'] {
  const raw = new Uint8Array(src.buffer, src.byteOffset, src.byteLength);
  switch (e.dtype) {
    case 'U8':
      return raw.slice();
    case 'F32':
    case 'F64':
    case 'I32': {
      const Ctor = WRITE_ARRAY[e.dtype];
      const out = new Ctor(src.byteLength / Ctor.BYTES_PER_ELEMENT);
      if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(raw);
      else {
        for (let i = 0; i < out.length; i++) {
          out[i] = e.dtype === 'F32' ? src.getFloat32(4 * i, true) : e.dtype === 'F64' ? src.getFloat64(8 * i, true) : src.getInt32(4 * i, true);
        }
      }
      return out;
    }
    case 'F16': {
      // IEEE half precision, widened exactly to float32 (subnormals, infinities and NaN included).
      const out = new Float32Array(src.byteLength / 2);
      for (let i = 0; i < out.length; i++) out[i] = halfToFloat(src.getUint16(2 * i, true));
      return out;
    }
    case 'BF16': {
      // bfloat16 is the top half of a float32: widening is a 16-bit shift.
      const out = new Float32Array(src.byteLength / 2);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < out.length; i++) bits[i] = src.getUint16(2 * i, true) << 16;
      return out;
    }
    case 'I64': {
      const out = new Float64Array(src.byteLength / 8);
      const max = BigInt(Number.MAX_SAFE_INTEGER);
      for (let i = 0; i < out.length; i++) {
        const v = src.getBigInt64(8 * i, true);
        if (v > max || v < -max) fail(e.name, `I64 element ${i} is ${v}, not a safe integer (|v| <= 2^53 - 1); it cannot be read as a number`);
        out[i] = Number(v);
      }
      return out;
    }
    default:
      return fail(e.name, `unsupported dtype ${e.dtype} (rnnkit reads ${READABLE.join(', ')})`);
  }
}

/**
 * Reads and decodes a safetensors file (see decodeSafetensors; its errors name `path`). Errors from
 * reading the file itself (ENOENT, EACCES, …) are passed through.
 */
export async function readSafetensorsFile(path: string): Promise<{ tensors: Record<string, SafeTensor>; metadata: Record<string, string> }> {
  return decodeSafetensors(await readFile(path), path);
}

/** Encodes tensors and metadata (see encodeSafetensors) and writes them to `path` with writeFileAtomic. */
export async function writeSafetensorsFile(path: string, tensors: Record<string, SafeTensor>, metadata?: Record<string, string>): Promise<void> {
  await writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}
