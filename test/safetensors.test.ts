/**
 * lib/io/safetensors.ts and lib/io/files.ts.
 *
 * - Roundtrips of every writable dtype (F32, F64, I32, U8), empty and scalar shapes, metadata, the
 *   reference layout (dtype order, names, 8-byte padding), and the encoder's refusals.
 * - The files written by test/fixtures/gen_safetensors.py (by the spec, with Python's struct/json, in
 *   the reference serializer's layout; see that script): decoded and compared with the values of
 *   safetensors_reference.json, and re-encoded byte for byte. The generator also checks, in Python,
 *   that rnnkit's encoding parses; this test does not need Python.
 * - Every refusal of decodeSafetensors, each checking the message names the file and the tensor.
 * - writeFileAtomic / writeFileAtomicSync: overwrites, permissions, symlinks, cleanup on error,
 *   readers racing writers (in-process and a writer child process) always seeing a complete version,
 *   and children SIGKILLed in the middle of writing a large file leaving the old file intact.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import {
  MAX_HEADER_BYTES, SafetensorsError, decodeSafetensors, encodeSafetensors, readSafetensorsFile, writeSafetensorsFile,
  type SafeDType, type SafeTensor,
} from '../lib/io/safetensors.js';
import { isAtomicTempFile, writeFileAtomic, writeFileAtomicSync } from '../lib/io/files.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..');
const fixtures = path.join(here, 'fixtures');
const filesModule = pathToFileURL(path.join(repoRoot, 'lib', 'io', 'files.ts')).href;

const tmpRoot = mkdtempSync(path.join(os.tmpdir(), 'rnnkit-safetensors-'));
after(() => rmSync(tmpRoot, { recursive: true, force: true }));
let dirCount = 0;
function freshDir(): string {
  const d = path.join(tmpRoot, `d${dirCount++}`);
  mkdirSync(d);
  return d;
}

// ---------------------------------------------------------------------------------------------
// Helpers

type Data = SafeTensor['data'];

/** Values as a plain array (assert.deepStrictEqual then tells NaN, -0 and 0 apart like Object.is). */
const values = (d: Data): number[] => Array.from(d);

function assertTensorsEqual(got: Record<string, SafeTensor>, want: Record<string, SafeTensor>, what: string): void {
  assert.deepStrictEqual(Object.keys(got).sort(), Object.keys(want).sort(), `${what}: tensor names`);
  for (const name of Object.keys(want)) {
    const g = got[name];
    const w = want[name];
    assert.equal(g.dtype, w.dtype, `${what}: ${name} dtype`);
    assert.deepStrictEqual(g.shape, w.shape, `${what}: ${name} shape`);
    assert.equal(g.data.constructor, w.data.constructor, `${what}: ${name} array type`);
    assert.deepStrictEqual(values(g.data), values(w.data), `${what}: ${name} values`);
  }
}

/** Own-property record (so that a tensor named '__proto__' is a real entry). */
function record<T>(entries: [string, T][]): Record<string, T> {
  return Object.fromEntries(entries) as Record<string, T>;
}

/** A file: u64 header size, the header (a string, or an object serialised as JSON), the data bytes. */
function craft(header: string | object, data: number | Uint8Array = 0, headerSize?: bigint): Uint8Array {
  const text = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const body = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = Buffer.alloc(8 + text.length + body.length);
  out.writeBigUInt64LE(headerSize ?? BigInt(text.length), 0);
  text.copy(out, 8);
  out.set(body, 8 + text.length);
  return out;
}

const FILE = 'models/bad.safetensors';

/** Asserts decode refuses `bytes` with a SafetensorsError naming FILE, `tensor` (or none) and every pattern. */
function refuses(bytes: Uint8Array, tensor: string | undefined, ...patterns: RegExp[]): void {
  let err: unknown;
  try {
    decodeSafetensors(bytes, FILE);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof SafetensorsError, `expected a SafetensorsError, got ${err instanceof Error ? err.stack : String(err)}`);
  assert.ok(err.message.startsWith(`${FILE}: `), `the message should start with the file: ${err.message}`);
  assert.equal(err.file, FILE);
  assert.equal(err.tensor, tensor, `the tensor field: ${err.message}`);
  if (tensor !== undefined) assert.ok(err.message.includes(`tensor ${JSON.stringify(tensor)}`), `the message should name tensor ${tensor}: ${err.message}`);
  for (const p of patterns) assert.match(err.message, p);
}

/** Asserts encode refuses with a SafetensorsError naming '<encode>', the tensor (if any) and the pattern. */
function encodeRefuses(fn: () => unknown, tensor: string | undefined, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof SafetensorsError, String(e));
    assert.equal(e.file, '<encode>');
    assert.equal(e.tensor, tensor, e.message);
    if (tensor !== undefined) assert.ok(e.message.includes(`tensor ${JSON.stringify(tensor)}`), e.message);
    assert.match(e.message, pattern);
    return true;
  });
}

interface SpecTensor { dtype: SafeDType; shape: number[]; values: (number | string)[] }
interface Spec { tensors: Record<string, SpecTensor>; metadata: Record<string, string> | null }
const spec = JSON.parse(readFileSync(path.join(fixtures, 'safetensors_reference.json'), 'utf8')) as { reference: Spec; i64: Spec };

const num = (v: number | string): number =>
  v === 'NaN' ? NaN : v === 'Infinity' ? Infinity : v === '-Infinity' ? -Infinity : v === '-0' ? -0 : (v as number);
const ARRAYS = { F32: Float32Array, F64: Float64Array, I32: Int32Array, U8: Uint8Array, I64: Float64Array } as const;

/** The tensors of a spec as SafeTensors (I64 as Float64Array, as decode returns them). */
function fromSpec(s: Spec): Record<string, SafeTensor> {
  return record(Object.entries(s.tensors).map(([name, t]) => {
    const Ctor = ARRAYS[t.dtype as keyof typeof ARRAYS];
    return [name, { dtype: t.dtype, shape: t.shape, data: Ctor.from(t.values.map(num)) }];
  }));
}

/** Every writable dtype, empty and scalar shapes, special values, awkward names. */
function sampleTensors(): Record<string, SafeTensor> {
  return record<SafeTensor>([
    ['w', { dtype: 'F32', shape: [2, 3], data: Float32Array.from([1.5, -0, NaN, Infinity, -Infinity, 1e-45]) }],
    ['b', { dtype: 'F64', shape: [4], data: Float64Array.from([0.1, -0, Number.MIN_VALUE, -Number.MAX_VALUE]) }],
    ['s', { dtype: 'F64', shape: [], data: Float64Array.from([Math.E]) }],
    ['s32', { dtype: 'F32', shape: [], data: Float32Array.from([-2]) }],
    ['i', { dtype: 'I32', shape: [3, 1], data: Int32Array.from([-2147483648, 2147483647, 0]) }],
    ['u', { dtype: 'U8', shape: [3], data: Uint8Array.from([0, 128, 255]) }],
    ['odd', { dtype: 'U8', shape: [1], data: Uint8Array.from([9]) }],
    ['empty', { dtype: 'F32', shape: [0], data: new Float32Array(0) }],
    ['empty2', { dtype: 'F64', shape: [3, 0, 2], data: new Float64Array(0) }],
    ['emptyI', { dtype: 'I32', shape: [0], data: new Int32Array(0) }],
    ['emptyU', { dtype: 'U8', shape: [0, 0], data: new Uint8Array(0) }],
    ['layer.0/weight_ih_l0 ü "q"', { dtype: 'F32', shape: [1], data: Float32Array.from([3]) }],
    ['__proto__', { dtype: 'I32', shape: [1], data: Int32Array.from([42]) }],
  ]);
}

// ---------------------------------------------------------------------------------------------

describe('safetensors: encode and decode', () => {
  test('roundtrip of every writable dtype, empty and scalar shapes, special values and metadata', () => {
    const tensors = sampleTensors();
    const metadata = record([['format', 'pt'], ['json', '{"a":[1,2]}'], ['ünï', 'line\nbreak "quoted" \u0001'], ['__proto__', 'x']]);
    const bytes = encodeSafetensors(tensors, metadata);
    const got = decodeSafetensors(bytes, 'roundtrip');
    assertTensorsEqual(got.tensors, tensors, 'roundtrip');
    assert.deepStrictEqual(Object.keys(got.metadata).sort(), Object.keys(metadata).sort());
    for (const k of Object.keys(metadata)) assert.equal(got.metadata[k], metadata[k], `metadata ${k}`);
    assert.equal(Object.getPrototypeOf(got.tensors), Object.prototype, 'the name __proto__ must not replace the prototype');
    assert.ok(Object.prototype.hasOwnProperty.call(got.tensors, '__proto__'));
  });

  test('decoded arrays are fresh aligned copies, also from an unaligned view', () => {
    const tensors = sampleTensors();
    const bytes = encodeSafetensors(tensors);
    // Shift the file by one byte inside a larger buffer: no tensor is aligned in memory there.
    const big = new Uint8Array(bytes.length + 3);
    big.set(bytes, 1);
    const view = big.subarray(1, 1 + bytes.length);
    const got = decodeSafetensors(view, 'unaligned');
    assertTensorsEqual(got.tensors, tensors, 'unaligned');
    for (const [name, t] of Object.entries(got.tensors)) {
      assert.equal(t.data.byteOffset, 0, name);
      assert.notEqual(t.data.buffer, big.buffer, `${name} must not share the input's memory`);
    }
    const before = values(got.tensors.w.data);
    big.fill(0xee);
    assert.deepStrictEqual(values(got.tensors.w.data), before, 'changing the input must not change the result');
    assert.deepStrictEqual(got.metadata, {}, 'no metadata → {}');
  });

  test('layout: F64, F32, I32, U8 then by name, header padded to 8 bytes, __metadata__ only when given', () => {
    const tensors = sampleTensors();
    for (const metadata of [undefined, {}, { k: 'v' }, { k: 'vv' }, { k: 'vvv' }] as (Record<string, string> | undefined)[]) {
      const bytes = encodeSafetensors(tensors, metadata);
      const n = Number(bytes.readBigUInt64LE(0));
      assert.equal(n % 8, 0, 'header size is a multiple of 8');
      const text = bytes.subarray(8, 8 + n).toString('utf8');
      assert.match(text, /^\{.*\} *$/s);
      const header = JSON.parse(text) as Record<string, { dtype: string; data_offsets: [number, number] }>;
      assert.equal('__metadata__' in header, metadata !== undefined);
      if (metadata !== undefined) assert.equal(Object.keys(header)[0], '__metadata__', '__metadata__ comes first');
      const order = Object.keys(header).filter((k) => k !== '__metadata__');
      const rank = { F64: 0, F32: 1, I32: 2, U8: 3 } as Record<string, number>;
      const want = [...order].sort((a, b) => rank[header[a].dtype] - rank[header[b].dtype] || Buffer.compare(Buffer.from(a), Buffer.from(b)));
      assert.deepStrictEqual(order, want);
      let at = 0;
      for (const k of order) {
        assert.equal(header[k].data_offsets[0], at, `${k} starts where the previous tensor ends`);
        at = header[k].data_offsets[1];
      }
      assert.equal(bytes.length, 8 + n + at, 'nothing after the last tensor');
    }
    const empty = encodeSafetensors({});
    assert.equal(empty.length, 16);
    assert.equal(empty.subarray(8).toString(), '{}      ');
    assert.deepStrictEqual(decodeSafetensors(empty, 'empty'), { tensors: {}, metadata: {} });
  });

  test('encode refuses what it cannot write, naming the tensor', () => {
    const t = (x: Partial<SafeTensor> & Record<string, unknown>) => ({ ok: { dtype: 'F32', shape: [1], data: new Float32Array(1), ...x } as SafeTensor });
    encodeRefuses(() => encodeSafetensors(t({ dtype: 'I64', data: new Float64Array(1) })), 'ok', /cannot write dtype "I64"/);
    encodeRefuses(() => encodeSafetensors(t({ dtype: 'F16' })), 'ok', /cannot write dtype "F16"/);
    encodeRefuses(() => encodeSafetensors(t({ data: new Float64Array(1) })), 'ok', /F32 needs a Float32Array, got Float64Array/);
    encodeRefuses(() => encodeSafetensors(t({ data: [1] as unknown as Float32Array })), 'ok', /needs a Float32Array/);
    encodeRefuses(() => encodeSafetensors(t({ shape: [2] })), 'ok', /shape \[2\] has 2 elements, the data has 1/);
    encodeRefuses(() => encodeSafetensors(t({ shape: [] , data: new Float32Array(0) })), 'ok', /shape \[\] has 1 elements, the data has 0/);
    encodeRefuses(() => encodeSafetensors(t({ shape: [-1] })), 'ok', /non-negative integers/);
    encodeRefuses(() => encodeSafetensors(t({ shape: [0.5] })), 'ok', /non-negative integers/);
    encodeRefuses(() => encodeSafetensors({ __metadata__: t({}).ok }), '__metadata__', /reserved/);
    encodeRefuses(() => encodeSafetensors(t({}), { k: 1 as unknown as string }), undefined, /metadata "k" must be a string/);
  });
});

describe('safetensors: reference files (test/fixtures/gen_safetensors.py)', () => {
  const refFile = path.join(fixtures, 'safetensors_reference.safetensors');

  test('the reference file decodes to the expected values and metadata', async () => {
    const got = await readSafetensorsFile(refFile);
    assertTensorsEqual(got.tensors, fromSpec(spec.reference), 'reference');
    assert.deepStrictEqual(got.metadata, spec.reference.metadata);
    // Spot checks independent of the JSON: NaN, -0, the float32 subnormal, int32 extremes.
    assert.ok(Number.isNaN(got.tensors.weight.data[5]));
    assert.ok(Object.is(got.tensors.weight.data[1], -0));
    assert.equal(got.tensors.weight.data[2], Math.fround(1e-40));
    assert.deepStrictEqual(values(got.tensors.counts.data), [-(2 ** 31), 2 ** 31 - 1, 0, -1]);
    assert.deepStrictEqual(got.tensors.scalar.shape, []);
    assert.equal(got.tensors.scalar.data[0], Math.PI);
    assert.deepStrictEqual(got.tensors.empty2d.shape, [2, 0]);
  });

  test("rnnkit's encoding of the same tensors is the reference file byte for byte", () => {
    const want = readFileSync(refFile);
    const got = encodeSafetensors(fromSpec(spec.reference), spec.reference.metadata ?? undefined);
    assert.equal(got.length, want.length);
    assert.ok(got.equals(want), 'encodeSafetensors must reproduce the reference layout exactly');
  });

  test('I64 tensors are read as numbers', async () => {
    const got = await readSafetensorsFile(path.join(fixtures, 'safetensors_i64.safetensors'));
    assertTensorsEqual(got.tensors, fromSpec(spec.i64), 'i64');
    assert.deepStrictEqual(values(got.tensors.ids.data), [-(2 ** 53 - 1), 2 ** 53 - 1, 0, -1]);
    assert.equal(got.tensors.step.data[0], 123456789012);
    assert.deepStrictEqual(got.metadata, {});
  });

  test('a truncated or corrupted copy of the reference file is refused, naming the path and the tensor', async () => {
    const bytes = readFileSync(refFile);
    const dir = freshDir();
    const cut = path.join(dir, 'cut.safetensors');
    writeFileSync(cut, bytes.subarray(0, bytes.length - 1));
    // 'bytes' (U8 [5]) is the last tensor of the layout; one byte short it lies past the end.
    await assert.rejects(readSafetensorsFile(cut), (e: unknown) => {
      assert.ok(e instanceof SafetensorsError);
      assert.equal(e.file, cut);
      assert.equal(e.tensor, 'bytes');
      assert.match(e.message, /^.*cut\.safetensors: tensor "bytes": .*truncated: the data buffer expects 90 bytes \(through this tensor\), has 89$/);
      return true;
    });
    await assert.rejects(readSafetensorsFile(path.join(dir, 'missing.safetensors')), { code: 'ENOENT' });
    const long = path.join(dir, 'long.safetensors');
    writeFileSync(long, Buffer.concat([bytes, Buffer.from([0])]));
    await assert.rejects(readSafetensorsFile(long), /long\.safetensors: tensor "bytes": the data buffer has 91 bytes, but the tensors end at byte 90: 1 bytes follow/);
  });
});

describe('safetensors: decode refuses malformed files', () => {
  const f32 = (offsets: [number, number], shape: number[] = [(offsets[1] - offsets[0]) / 4]) => ({ dtype: 'F32', shape, data_offsets: offsets });

  test('shorter than 8 bytes', () => {
    refuses(new Uint8Array(0), undefined, /file too short: 0 bytes/);
    refuses(new Uint8Array(7), undefined, /file too short: 7 bytes/);
  });

  test('oversized header', () => {
    refuses(craft('{}', 0, BigInt(MAX_HEADER_BYTES) + 1n), undefined, /oversized header: 100000001 bytes, more than MAX_HEADER_BYTES/);
    refuses(craft('{}', 0, 2n ** 64n - 1n), undefined, /oversized header/);
    refuses(craft('{}', 0, 3n), undefined, /oversized header: 3 bytes, but the file has only 2 bytes/);
    // A header size within the limit but past the end of the file.
    refuses(craft(`{"a":${JSON.stringify(f32([0, 4]))}}`, 4, 1000n), undefined, /oversized header: 1000 bytes, but the file has only/);
  });

  test('a header that is not UTF-8, not JSON or not an object', () => {
    const badUtf8 = craft('{"a":1}      ');
    badUtf8[10] = 0xc3; // a lone lead byte
    refuses(badUtf8, undefined, /not valid UTF-8/);
    refuses(craft('{"a": {"dtype": "F32",'), undefined, /not valid JSON/);
    refuses(craft('{} trailing'), undefined, /not valid JSON/);
    refuses(craft('[1, 2]'), undefined, /JSON object starting with '\{'/);
    refuses(craft('"text"'), undefined, /JSON object/);
    refuses(craft('null'), undefined, /JSON object/);
    refuses(craft(' {}'), undefined, /starting with '\{'/);
    refuses(craft('{"__metadata__": {"k": 1}}'), undefined, /__metadata__ "k" must be a string/);
    refuses(craft('{"__metadata__": ["x"]}'), undefined, /__metadata__ must be an object of strings/);
    // Trailing spaces (the padding) are fine.
    assert.deepStrictEqual(decodeSafetensors(craft('{}      '), FILE), { tensors: {}, metadata: {} });
  });

  test('an entry without dtype, shape or data_offsets, or not an object', () => {
    refuses(craft({ w: { shape: [1], data_offsets: [0, 4] } }, 4), 'w', /has no dtype/);
    refuses(craft({ w: { dtype: 'F32', data_offsets: [0, 4] } }, 4), 'w', /has no shape/);
    refuses(craft({ w: { dtype: 'F32', shape: [1] } }, 4), 'w', /has no data_offsets/);
    refuses(craft({ w: 5 }, 0), 'w', /must be an object with dtype, shape and data_offsets, got 5/);
    refuses(craft({ w: [1] }, 0), 'w', /must be an object/);
  });

  test('an unknown dtype', () => {
    refuses(craft({ w: { dtype: 'F33', shape: [1], data_offsets: [0, 4] } }, 4), 'w', /unknown dtype "F33"/);
    refuses(craft({ w: { dtype: 'f32', shape: [1], data_offsets: [0, 4] } }, 4), 'w', /unknown dtype "f32"/);
    refuses(craft({ w: { dtype: 4, shape: [1], data_offsets: [0, 4] } }, 4), 'w', /unknown dtype 4/);
    refuses(craft({ w: { dtype: 'toString', shape: [1], data_offsets: [0, 4] } }, 4), 'w', /unknown dtype "toString"/);
  });

  test('a shape that is not non-negative integers', () => {
    for (const shape of [[-1], [1.5], '4', [null], [2 ** 53], { 0: 1 }, ['1']]) {
      refuses(craft({ w: { dtype: 'F32', shape, data_offsets: [0, 4] } }, 4), 'w', /shape must be an array of non-negative integers/);
    }
  });

  test('bad data_offsets', () => {
    for (const offsets of [[4, 0], [0], [0, 4, 8], [0, -4], [0.5, 4], 'x', [0, '4']]) {
      refuses(craft({ w: { dtype: 'F32', shape: [1], data_offsets: offsets } }, 4), 'w', /data_offsets must be \[begin, end\]/);
    }
  });

  test('a byte length that is not product(shape) · dtype size', () => {
    refuses(craft({ w: f32([0, 4], [2]) }, 4), 'w', /hold 4 bytes, but F32 \[2\] needs 8/);
    refuses(craft({ w: { dtype: 'F64', shape: [2, 3], data_offsets: [0, 24] } }, 24), 'w', /hold 24 bytes, but F64 \[2, 3\] needs 48/);
    refuses(craft({ w: f32([0, 8], []) }, 8), 'w', /hold 8 bytes, but F32 \[\] needs 4/);
    refuses(craft({ w: { dtype: 'I32', shape: [3, 0], data_offsets: [0, 4] } }, 4), 'w', /hold 4 bytes, but I32 \[3, 0\] needs 0/);
    assert.equal(decodeSafetensors(craft({ w: f32([0, 4], []) }, 4), FILE).tensors.w.shape.length, 0, 'a scalar F32 is 4 bytes');
  });

  test('offsets out of the data buffer (a truncated file)', () => {
    refuses(craft({ a: f32([0, 4]), b: f32([4, 8]) }, 6), 'b', /data_offsets \[4, 8\] are out of the data buffer: truncated: the data buffer expects 8 bytes \(through this tensor\), has 6/);
    refuses(craft({ a: f32([0, 4]) }, 0), 'a', /truncated: the data buffer expects 4 bytes \(through this tensor\), has 0/);
    refuses(craft({ a: { dtype: 'F64', shape: [2 ** 40], data_offsets: [0, 2 ** 43] } }, 8), 'a', /truncated: the data buffer expects 8796093022208 bytes \(through this tensor\), has 8/);
  });

  test('overlapping tensors and holes', () => {
    refuses(craft({ a: f32([0, 8]), b: f32([4, 12]) }, 12), 'b', /data_offsets \[4, 12\] overlap tensor "a" \[0, 8\]/);
    refuses(craft({ a: f32([0, 8]), b: f32([0, 8]) }, 8), 'b', /overlap tensor "a"/);
    refuses(craft({ a: f32([0, 8]), z: f32([4, 4]) }, 8), 'z', /overlap tensor "a"/);
    refuses(craft({ a: f32([0, 4]), b: f32([8, 12]) }, 12), 'b', /leave a hole of 4 bytes after tensor "a"/);
    refuses(craft({ a: f32([4, 8]) }, 8), 'a', /leave a hole of 4 bytes after the start of the data buffer/);
  });

  test('bytes after the last tensor', () => {
    refuses(craft({ a: f32([0, 4]), b: f32([4, 8]) }, 9), 'b', /the data buffer has 9 bytes, but the tensors end at byte 8: 1 bytes follow the last tensor/);
    refuses(craft({}, 3), undefined, /the data buffer has 3 bytes, but the tensors end at byte 0/);
  });

  test('known but unsupported dtypes, and I64 values that are not safe integers', () => {
    refuses(craft({ h: { dtype: 'I16', shape: [2], data_offsets: [0, 4] } }, 4), 'h', /unsupported dtype I16 \(rnnkit reads F32, F64, F16, BF16, I32, I64, U8\)/);
    refuses(craft({ h: { dtype: 'F8_E4M3', shape: [1], data_offsets: [0, 1] } }, 1), 'h', /unsupported dtype F8_E4M3/);
    refuses(craft({ h: { dtype: 'F16', shape: [3], data_offsets: [0, 4] } }, 4), 'h', /F16|bytes/);
    refuses(craft({ h: { dtype: 'BOOL', shape: [1], data_offsets: [0, 1] } }, 1), 'h', /unsupported dtype BOOL/);
    const big = new Uint8Array(16);
    new DataView(big.buffer).setBigInt64(8, 2n ** 53n, true);
    refuses(craft({ n: { dtype: 'I64', shape: [2], data_offsets: [0, 16] } }, big), 'n', /I64 element 1 is 9007199254740992, not a safe integer/);
    new DataView(big.buffer).setBigInt64(8, -(2n ** 63n), true);
    refuses(craft({ n: { dtype: 'I64', shape: [2], data_offsets: [0, 16] } }, big), 'n', /I64 element 1 is -9223372036854775808/);
  });

  test('valid hand-made files in any header order, with unknown extra fields, decode', () => {
    const data = new Uint8Array(12);
    new DataView(data.buffer).setFloat32(0, 2.5, true);
    new DataView(data.buffer).setInt32(4, -7, true);
    new DataView(data.buffer).setFloat32(8, -1, true);
    const got = decodeSafetensors(craft({
      c: { dtype: 'F32', shape: [], data_offsets: [8, 12] },
      a: { dtype: 'F32', shape: [1, 1], data_offsets: [0, 4], extra: true },
      b: { dtype: 'I32', shape: [1], data_offsets: [4, 8] },
      e: { dtype: 'U8', shape: [0], data_offsets: [12, 12] },
    }, data), FILE);
    assert.deepStrictEqual(values(got.tensors.a.data), [2.5]);
    assert.deepStrictEqual(values(got.tensors.b.data), [-7]);
    assert.deepStrictEqual(values(got.tensors.c.data), [-1]);
    assert.deepStrictEqual(got.tensors.e.shape, [0]);
    assert.ok(got.tensors.b.data instanceof Int32Array);
  });
});

// ---------------------------------------------------------------------------------------------

/** Every file in dir except `keep`. */
function others(dir: string, ...keep: string[]): string[] {
  return readdirSync(dir).filter((f) => !keep.includes(f));
}

/** A child script, written to dir, that imports lib/io/files.ts (argv[2]) and runs `body`. */
function childScript(dir: string, name: string, body: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, `const { writeFileAtomic, writeFileAtomicSync } = await import(process.argv[2]);\nconst args = process.argv.slice(3);\n${body}\n`);
  return file;
}

describe('writeFileAtomic', () => {
  test('creates, overwrites, writes strings as UTF-8 and only the view of a Uint8Array; no temp files remain', async () => {
    const dir = freshDir();
    const p = path.join(dir, 'f.txt');
    await writeFileAtomic(p, 'first ü');
    assert.equal(readFileSync(p, 'utf8'), 'first ü');
    const buf = Uint8Array.from([1, 2, 3, 4, 5, 6]);
    await writeFileAtomic(p, buf.subarray(2, 5));
    assert.deepStrictEqual([...readFileSync(p)], [3, 4, 5]);
    await writeFileAtomic(p, '');
    assert.equal(readFileSync(p).length, 0);
    writeFileAtomicSync(p, 'sync');
    assert.equal(readFileSync(p, 'utf8'), 'sync');
    writeFileAtomicSync(p, buf.subarray(5));
    assert.deepStrictEqual([...readFileSync(p)], [6]);
    assert.deepStrictEqual(others(dir, 'f.txt'), []);
    await assert.rejects(writeFileAtomic(p, 5 as unknown as string), TypeError);
  });

  test('keeps the permission bits of the file it replaces, and writes through a symlink', async () => {
    const dir = freshDir();
    const p = path.join(dir, 'secret.json');
    writeFileSync(p, 'old');
    chmodSync(p, 0o600);
    await writeFileAtomic(p, 'new');
    assert.equal(statSync(p).mode & 0o777, 0o600);
    chmodSync(p, 0o640);
    writeFileAtomicSync(p, 'newer');
    assert.equal(statSync(p).mode & 0o777, 0o640);
    assert.equal(readFileSync(p, 'utf8'), 'newer');

    const link = path.join(dir, 'link.json');
    symlinkSync('secret.json', link);
    await writeFileAtomic(link, 'via link');
    assert.equal(readlinkSync(link), 'secret.json', 'the link stays a link');
    assert.equal(readFileSync(p, 'utf8'), 'via link');
    writeFileAtomicSync(link, 'via link, sync');
    assert.equal(readFileSync(p, 'utf8'), 'via link, sync');
    assert.deepStrictEqual(others(dir, 'secret.json', 'link.json'), []);
  });

  test('on an error nothing is left behind and the error is passed on', async () => {
    const dir = freshDir();
    await assert.rejects(writeFileAtomic(path.join(dir, 'no', 'such', 'f'), 'x'), { code: 'ENOENT' });
    assert.throws(() => writeFileAtomicSync(path.join(dir, 'no', 'f'), 'x'), { code: 'ENOENT' });
    // The target is a non-empty directory: the rename fails after the temp file was written.
    const sub = path.join(dir, 'taken');
    mkdirSync(sub);
    writeFileSync(path.join(sub, 'inside'), 'keep');
    await assert.rejects(writeFileAtomic(sub, 'x'), (e: NodeJS.ErrnoException) => ['EISDIR', 'ENOTEMPTY', 'EEXIST'].includes(e.code ?? ''));
    assert.throws(() => writeFileAtomicSync(sub, 'x'), (e: NodeJS.ErrnoException) => ['EISDIR', 'ENOTEMPTY', 'EEXIST'].includes(e.code ?? ''));
    assert.deepStrictEqual(others(dir, 'taken'), [], 'the temp files were removed');
    assert.equal(readFileSync(path.join(sub, 'inside'), 'utf8'), 'keep');
  });

  test('concurrent writers and readers in one process: every read is one complete version', async () => {
    const dir = freshDir();
    const p = path.join(dir, 'shared.bin');
    const versions = Array.from({ length: 12 }, (_, i) => Buffer.alloc((1 << 20) + i * 65537, 65 + i));
    writeFileSync(p, versions[0]);
    let done = false;
    let reads = 0;
    const reader = (async () => {
      while (!done) {
        const got = await readFile(p);
        reads++;
        const v = got.length > 0 ? got[0] - 65 : -1;
        assert.ok(v >= 0 && v < versions.length && got.equals(versions[v]), `read ${reads}: a partial or mixed file (${got.length} bytes)`);
      }
    })();
    for (let round = 0; round < 4; round++) {
      await Promise.all(versions.map((v, i) => (i % 2 ? writeFileAtomic(p, v) : Promise.resolve().then(() => writeFileAtomicSync(p, v)))));
    }
    done = true;
    await reader;
    assert.ok(reads > 0);
    const final = readFileSync(p);
    assert.ok(versions.some((v) => v.equals(final)));
    assert.deepStrictEqual(others(dir, 'shared.bin'), []);
  });

  test('a reader racing a writer child process only ever sees the old or the new content', async () => {
    const dir = freshDir();
    const p = path.join(dir, 'race.bin');
    const A = Buffer.alloc(3 << 20, 0x61);
    const B = Buffer.alloc(2 << 20, 0x62);
    writeFileSync(p, A);
    const script = childScript(dir, 'writer.mjs', `
const A = Buffer.alloc(3 << 20, 0x61), B = Buffer.alloc(2 << 20, 0x62);
for (let i = 0; i < 150; i++) {
  if (i % 2) await writeFileAtomic(args[0], A); else writeFileAtomicSync(args[0], B);
}
console.log('ok: wrote');`);
    const child = spawn(process.execPath, ['--import', 'tsx', script, filesModule, p], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let running = true;
    void exited.then(() => { running = false; });
    const seen = { a: 0, b: 0 };
    while (running) {
      const got = readFileSync(p);
      if (got.equals(A)) seen.a++;
      else if (got.equals(B)) seen.b++;
      else {
        child.kill('SIGKILL');
        assert.fail(`a reader saw ${got.length} bytes that are neither version (first ${got[0]}, last ${got[got.length - 1]})`);
      }
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(await exited, 0, out);
    assert.match(out, /ok: wrote/);
    assert.ok(seen.a + seen.b > 20, `the reader ran ${seen.a + seen.b} times`);
    assert.ok(seen.b > 0, `the reader saw the new version (${JSON.stringify(seen)})`);
    assert.deepStrictEqual(others(dir, 'race.bin', 'writer.mjs'), []);
  });

  test('SIGKILL in the middle of writeFileAtomic leaves the previous file intact (spawnSync, the child kills itself)', () => {
    const dir = freshDir();
    const p = path.join(dir, 'model.safetensors');
    const old = encodeSafetensors({ w: { dtype: 'F32', shape: [3], data: Float32Array.from([1, 2, 3]) } }, { v: 'old' });
    writeFileSync(p, old);
    const total = 192 << 20;
    // The child starts the async write (8 MiB chunks on the thread pool) and polls from the main
    // thread; once the temp file holds part of the data it SIGKILLs itself.
    const script = childScript(dir, 'killer.mjs', `
import('node:fs').then((fs) => {
  const [target, total] = [args[0], Number(args[1])];
  const dir = target.slice(0, target.lastIndexOf('/'));
  const prefix = '.' + target.slice(dir.length + 1) + '.tmp-' + process.pid + '-';
  writeFileAtomic(target, Buffer.alloc(total, 0x5a)).then(() => { console.log('missed: the write completed'); process.exit(3); });
  const poll = () => {
    for (const f of fs.readdirSync(dir)) {
      if (!f.startsWith(prefix)) continue;
      const size = fs.statSync(dir + '/' + f).size;
      if (size > 0 && size < total) {
        fs.writeSync(1, 'killing: ' + f + ' ' + size + '\\n');
        process.kill(process.pid, 'SIGKILL');
      }
    }
    setImmediate(poll);
  };
  poll();
});`);
    let res: ReturnType<typeof spawnSync> | undefined;
    for (let attempt = 0; attempt < 5; attempt++) {
      res = spawnSync(process.execPath, ['--import', 'tsx', script, filesModule, p, String(total)], { cwd: repoRoot, encoding: 'utf8', timeout: 120_000 });
      if (res.signal === 'SIGKILL') break;
      for (const f of others(dir, 'model.safetensors', 'killer.mjs')) rmSync(path.join(dir, f));
      writeFileSync(p, old);
    }
    assert.ok(res);
    assert.equal(res.signal, 'SIGKILL', `the child was not killed mid-write: status ${res.status}\n${res.stdout}\n${res.stderr}`);
    const m = /killing: (\S+) (\d+)/.exec(String(res.stdout));
    assert.ok(m, String(res.stdout));
    const size = Number(m[2]);
    assert.ok(size > 0 && size < total, `killed with ${size} of ${total} bytes written`);

    assert.ok(readFileSync(p).equals(old), 'the previous file must be intact');
    assert.equal(decodeSafetensors(readFileSync(p), p).metadata.v, 'old');
    const left = others(dir, 'model.safetensors', 'killer.mjs');
    assert.deepStrictEqual(left, [m[1]], 'only the temp file of the killed write remains');
    assert.ok(isAtomicTempFile(left[0]), left[0]);
    assert.ok(left[0].startsWith(`.model.safetensors.tmp-${res.pid}-`), left[0]);
    assert.ok(!isAtomicTempFile('model.safetensors') && !isAtomicTempFile('.model.safetensors'));
  });

  test('SIGKILL in the middle of writeFileAtomicSync (killed from outside) leaves the previous file intact', async () => {
    const dir = freshDir();
    const p = path.join(dir, 'model.json');
    writeFileSync(p, '{"version":"old"}\n');
    const total = 384 << 20;
    const script = childScript(dir, 'sync-writer.mjs', `
const data = Buffer.alloc(Number(args[1]), 0x20);
console.log('writing');
writeFileAtomicSync(args[0], data);
console.log('done');`);
    const child = spawn(process.execPath, ['--import', 'tsx', script, filesModule, p, String(total)], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    let killedAt = -1;
    const deadline = Date.now() + 60_000;
    while (killedAt < 0 && Date.now() < deadline && child.exitCode === null) {
      for (const f of readdirSync(dir)) {
        if (!isAtomicTempFile(f)) continue;
        let size = 0;
        try { size = statSync(path.join(dir, f)).size; } catch { continue; }
        if (size > 0 && size < total) {
          child.kill('SIGKILL');
          killedAt = size;
          break;
        }
      }
      if (killedAt < 0) await new Promise((r) => setTimeout(r, 1));
    }
    const signal = await exited;
    assert.ok(killedAt > 0, `never saw a partial temp file (child output: ${out})`);
    assert.equal(signal, 'SIGKILL', out);
    assert.doesNotMatch(out, /done/);
    assert.equal(readFileSync(p, 'utf8'), '{"version":"old"}\n', 'the previous file must be intact');
    const left = others(dir, 'model.json', 'sync-writer.mjs');
    assert.equal(left.length, 1, `one temp file remains: ${left}`);
    assert.ok(left[0].startsWith(`.model.json.tmp-${child.pid}-`), left[0]);
    assert.ok(existsSync(path.join(dir, left[0])));
  });
});

describe('writeSafetensorsFile', () => {
  test('writes atomically what readSafetensorsFile reads back', async () => {
    const dir = freshDir();
    const p = path.join(dir, 'w.safetensors');
    const tensors = sampleTensors();
    await writeSafetensorsFile(p, tensors, { a: 'b' });
    const got = await readSafetensorsFile(p);
    assertTensorsEqual(got.tensors, tensors, 'file');
    assert.deepStrictEqual(got.metadata, { a: 'b' });
    assert.deepStrictEqual(others(dir, 'w.safetensors'), []);
  });
});

test('F16 and BF16 tensors written by PyTorch are widened exactly to float32 (zeros, subnormals, extremes, infinities, NaN)', async () => {
  const dir = new URL('./fixtures/', import.meta.url);
  const { tensors } = await readSafetensorsFile(new URL('safetensors_halfs.safetensors', dir).pathname);
  const want = JSON.parse(await readFile(new URL('safetensors_halfs.json', dir), 'utf8')) as Record<string, (number | string)[]>;
  for (const name of ['f16', 'bf16']) {
    const t = tensors[name];
    assert.equal(t.dtype, name === 'f16' ? 'F16' : 'BF16');
    assert.ok(t.data instanceof Float32Array, `${name}: widened to a Float32Array`);
    assert.deepEqual(t.shape, [want[name].length]);
    want[name].forEach((w, i) => {
      const g = t.data[i];
      const label = `${name}[${i}]: got ${Object.is(g, -0) ? '-0' : g}, PyTorch ${w}`;
      if (w === 'nan') assert.ok(Number.isNaN(g), label);
      else if (w === '-0') assert.ok(Object.is(g, -0), label);
      else assert.equal(g, w === 'inf' ? Infinity : w === '-inf' ? -Infinity : w, label);
    });
  }
});
