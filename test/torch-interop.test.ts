/**
 * PyTorch ↔ rnnkit through safetensors state dicts (issue 9, item 2), against PyTorch 1.13 outputs
 * recorded by test/fixtures/gen_torch_interop.py:
 *  - every torch_interop_<case>.safetensors (nn.LSTM 2-layer bidirectional, with proj_size, nn.GRU
 *    bidirectional batch_first and time-major, nn.RNN relu without bias and tanh under a prefix,
 *    the three cells, the same LSTM stored in F16, BF16 and F64) loads through loadTorchSafetensors +
 *    fromTorch and reproduces PyTorch's output sequence and final states (cells: one step from the
 *    given h, c); the Embedding → LSTM → Linear model through sequentialFromTorch;
 *  - rnnkit → PyTorch: buildRnnkitExports (the generator's node script) writes, in-process, the same
 *    tensors byte for byte as the committed torch_interop_rnnkit_* files PyTorch loaded with
 *    load_state_dict(strict=True), whose recorded max |rnnkit − PyTorch| must be ≤ 1e-5; and those
 *    files load back into rnnkit (sequentialFromTorchFile for the model) with the same outputs;
 *  - toTorch refuses by name what PyTorch cannot express; malformed state dicts name the key;
 *    malformed files give a SafetensorsError naming the file (each in a child process).
 * Tolerance: |got − want| ≤ 1e-5·max(1, |want|).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import {
  Bidirectional, GRU, LSTM, SimpleRNN, Sequential, Dense, Tensor, UnsupportedFeatureError,
  fromTorch, loadTorchSafetensors, saveTorchSafetensors, sequentialFromTorch, sequentialFromTorchFile, toTorch,
  type Recurrent, type TorchKind,
} from '../lib/index.js';
import { SafetensorsError, readSafetensorsFile } from '../lib/io/safetensors.js';
import { assertClose, batchToTime, timeToBatch } from './helpers/compare.js';
import { assertChildOk, repoRoot, runNodeChild } from './helpers/child.js';
import { buildRnnkitExports, type RnnkitExport } from './fixtures/torch_interop_export.js';

const TOL = { rtol: 1e-5, floor: 1 };
const FIXTURES = path.join(repoRoot, 'test', 'fixtures');

interface Arr { data: number[]; shape: number[] }
interface TorchCase {
  name: string; file: string; kind: TorchKind; prefix: string; batch_first: boolean; dtype: 'float32' | 'float64'; stored: string;
  nonlinearity?: 'tanh' | 'relu'; input: Arr; h0?: Arr; c0?: Arr; outputs: Record<string, Arr>;
}
interface Fixture {
  torch_version: string;
  cases: TorchCase[];
  model: { name: string; file: string; layers: { kind: TorchKind; prefix: string }[]; keys: string[]; input: Arr; outputs: { output: Arr } };
  rnnkit: { name: string; file: string; torch: Record<string, unknown>; keys: string[]; max_abs_diff: number; max_abs_diff_per_output: Record<string, number> }[];
  bad_i64: { file: string; key: string };
}

// ---------------------------------------------------------------------------------------------
// Malformed files: run in a child process (this file re-run with --malformed <case>)

/** A valid little file: header + two F32 tensors a [2], b [3]. */
function fileBytes(header: Record<string, unknown> | string, dataBytes: number, declaredLength?: number): Uint8Array {
  let h = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  if (h.length % 8) h = Buffer.concat([h, Buffer.alloc(8 - (h.length % 8), 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(declaredLength ?? h.length));
  return Buffer.concat([len, h, Buffer.alloc(dataBytes, 1)]);
}

const GOOD = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [3], data_offsets: [8, 20] } };

const MALFORMED: Record<string, { bytes: () => Uint8Array; message: RegExp }> = {
  'truncated (the data ends early)': { bytes: () => fileBytes(GOOD, 20).slice(0, -6), message: /b|end|short|truncat|byte/i },
  'truncated inside the 8-byte length': { bytes: () => fileBytes(GOOD, 20).slice(0, 5), message: /8|length|short|header/i },
  'wrong header length (beyond the file)': { bytes: () => fileBytes(GOOD, 20, 1 << 20), message: /header|length|byte/i },
  'wrong header length (cuts the JSON)': { bytes: () => fileBytes(GOOD, 20, 16), message: /header|JSON/i },
  'overlapping offsets': {
    bytes: () => fileBytes({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 12] }, b: { dtype: 'F32', shape: [3], data_offsets: [8, 20] } }, 20),
    message: /overlap|offset/i,
  },
  'declared terabytes': {
    bytes: () => fileBytes({ a: { dtype: 'F32', shape: [1024, 1024, 1024, 1024], data_offsets: [0, 4 * 2 ** 40] } }, 16),
    message: /byte|size|offset|end/i,
  },
  'bad JSON header': { bytes: () => fileBytes('{"a": {"dtype": "F32", "shape": [2], ', 8), message: /JSON/i },
};

async function malformedChild(name: string): Promise<void> {
  const c = MALFORMED[name];
  if (!c) throw new Error(`no malformed case ${name}`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rnnkit-torch-bad-'));
  try {
    const file = path.join(dir, 'bad model.safetensors');
    writeFileSync(file, c.bytes());
    let err: unknown;
    try {
      await loadTorchSafetensors(file);
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof SafetensorsError, `${name}: expected a SafetensorsError, got ${String(err)}`);
    assert.ok(err.message.includes(file), `${name}: the message does not name the file: ${err.message}`);
    assert.match(err.message, c.message, `${name}: ${err.message}`);
    // The same through sequentialFromTorchFile.
    await assert.rejects(sequentialFromTorchFile(file), (e: unknown) => e instanceof SafetensorsError && e.message.includes(file));
    console.log(`ok: ${err.message}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const childArg = process.argv.indexOf('--malformed');
if (childArg >= 0) {
  await malformedChild(process.argv[childArg + 1]);
} else {
  runTests();
}

// ---------------------------------------------------------------------------------------------

function runTests(): void {
  const fx = JSON.parse(readFileSync(path.join(FIXTURES, 'torch_interop.json'), 'utf8')) as Fixture;
  const fixture = (f: string) => path.join(FIXTURES, f);
  const worst: Record<string, number> = {};
  const note = (group: string, d: number) => { worst[group] = Math.max(worst[group] ?? 0, d); };
  after(() => {
    console.log(`largest |rnnkit − PyTorch| per group: ${Object.entries(worst).map(([g, d]) => `${g} ${d.toExponential(2)}`).join(', ')}`);
  });

  const floats = (a: Arr, dtype: 'float32' | 'float64') => (dtype === 'float64' ? Float64Array.from(a.data) : Float32Array.from(a.data));

  describe('PyTorch → rnnkit: state dicts PyTorch wrote reproduce its outputs', () => {
    for (const c of fx.cases) {
      const group = c.kind.endsWith('Cell') ? 'cells' : c.stored === 'F32' ? 'modules' : `stored ${c.stored}`;
      test(`${c.name} (nn.${c.kind}, ${c.stored}${c.prefix ? `, prefix ${c.prefix}` : ''}${c.batch_first ? '' : ', batch_first=False'})`, async () => {
        const dict = await loadTorchSafetensors(fixture(c.file));
        const layer = fromTorch(dict, {
          kind: c.kind, prefix: c.prefix, dtype: c.dtype, returnSequences: !c.kind.endsWith('Cell'), returnState: true,
          batchFirst: c.batch_first, ...(c.nonlinearity ? { nonlinearity: c.nonlinearity } : {}),
        }) as Recurrent;
        assert.equal(layer.dtype, c.dtype);
        let report = '';
        if (c.kind.endsWith('Cell')) {
          const [Bn, I] = c.input.shape;
          const x = Tensor.from(floats(c.input, c.dtype), [Bn, 1, I]);
          const init = [Tensor.from(floats(c.h0!, c.dtype), c.h0!.shape)];
          if (c.c0) init.push(Tensor.from(floats(c.c0, c.dtype), c.c0.shape));
          const r = layer.forward(x, { initialState: init });
          const rh = assertClose(r.states[0].data, c.outputs.h.data, { ...TOL, label: `${c.name} h'`, shape: c.outputs.h.shape });
          assertClose(r.output.data, c.outputs.h.data, { ...TOL, label: `${c.name} output` });
          let d = rh.maxAbs;
          if (c.outputs.c) d = Math.max(d, assertClose(r.states[1].data, c.outputs.c.data, { ...TOL, label: `${c.name} c'` }).maxAbs);
          report = `h'/c' ${d.toExponential(2)}`;
          note(group, d);
        } else {
          const [a, b, F] = c.input.shape;
          const raw = floats(c.input, c.dtype);
          // batch_first=False: PyTorch's [steps, batch, features] → rnnkit's [batch, steps, features].
          const [Bn, Tn] = c.batch_first ? [a, b] : [b, a];
          const x = Tensor.from(c.batch_first ? raw : timeToBatch(raw, Tn, Bn, F), [Bn, Tn, F]);
          const r = layer.forward(x);
          const W = c.outputs.output.shape[2];
          const y = c.batch_first ? r.output.data : batchToTime(r.output.data as Float32Array, Bn, Tn, W);
          const ry = assertClose(y, c.outputs.output.data, { ...TOL, label: `${c.name} output`, shape: c.outputs.output.shape });
          const rh = assertClose(r.states[0].data, c.outputs.h_n.data, { ...TOL, label: `${c.name} h_n`, shape: c.outputs.h_n.shape });
          let d = Math.max(ry.maxAbs, rh.maxAbs);
          if (c.outputs.c_n) d = Math.max(d, assertClose(r.states[1].data, c.outputs.c_n.data, { ...TOL, label: `${c.name} c_n`, shape: c.outputs.c_n.shape }).maxAbs);
          else assert.equal(r.states.length, 1);
          report = `output/h_n/c_n ${d.toExponential(2)}`;
          note(group, d);
        }
        console.log(`${c.file}: largest |rnnkit − PyTorch| ${report}`);
      });
    }

    test('the F16 and BF16 files widen to exactly the weights PyTorch ran with (vs the F64 file: rounding only)', async () => {
      const f64 = await loadTorchSafetensors(fixture('torch_interop_lstm_f64.safetensors'));
      for (const [f, ulp] of [['torch_interop_lstm_f16.safetensors', 2 ** -11], ['torch_interop_lstm_bf16.safetensors', 2 ** -8]] as const) {
        const half = await loadTorchSafetensors(fixture(f));
        assert.deepEqual(Object.keys(half).sort(), Object.keys(f64).sort());
        for (const [k, t] of Object.entries(half)) {
          assert.ok(t.data instanceof Float32Array, `${f}: ${k} is widened to float32`);
          const want = f64[k].data;
          for (let i = 0; i < t.data.length; i++) assert.ok(Math.abs(t.data[i] - want[i]) <= ulp * Math.max(Math.abs(want[i]), 2 ** -14), `${f}: ${k}[${i}] ${t.data[i]} vs ${want[i]}`);
        }
      }
    });

    test(`the whole model (Embedding → LSTM → Linear): sequentialFromTorch with its layer list`, async () => {
      const m = fx.model;
      const dict = await loadTorchSafetensors(fixture(m.file));
      assert.deepEqual(Object.keys(dict).sort(), m.keys);
      const model = sequentialFromTorch(dict, m.layers, { name: 'from_torch' });
      const y = await model.predict(Tensor.from(Float32Array.from(m.input.data), m.input.shape));
      assert.deepEqual([...y.shape], m.outputs.output.shape);
      const r = assertClose(y.data, m.outputs.output.data, { ...TOL, label: 'model output', shape: m.outputs.output.shape });
      note('model', r.maxAbs);
      console.log(`${m.file}: largest |rnnkit − PyTorch| ${r.maxAbs.toExponential(2)}`);
      // Without rnnkit's metadata the file needs the layer list, and the error says so.
      await assert.rejects(sequentialFromTorchFile(fixture(m.file)), (e: Error) => e instanceof TypeError && /sequentialFromTorch/.test(e.message) && e.message.includes(m.file));
      // A key no layer claims is an error naming it.
      assert.throws(() => sequentialFromTorch({ ...dict, 'head.weight': dict['fc.weight'] }, m.layers), /head\.weight/);
      assert.throws(() => sequentialFromTorch(dict, m.layers.slice(0, 2)), /key fc\.(weight|bias) belongs to none/);
    });
  });

  describe('rnnkit → PyTorch: state dicts rnnkit writes load in PyTorch with the same outputs', () => {
    let exports: RnnkitExport[] = [];
    const dir = mkdtempSync(path.join(os.tmpdir(), 'rnnkit-torch-interop-'));
    after(() => rmSync(dir, { recursive: true, force: true }));

    test('the export writes, byte for byte, the tensors of the files PyTorch checked', async () => {
      exports = await buildRnnkitExports(dir);
      assert.deepEqual(exports.map((e) => e.file).sort(), fx.rnnkit.map((r) => r.file).sort());
      for (const e of exports) {
        const fresh = await readSafetensorsFile(path.join(dir, e.file));
        const committed = await readSafetensorsFile(fixture(e.file));
        assert.deepEqual(Object.keys(fresh.tensors).sort(), Object.keys(committed.tensors).sort(), e.file);
        for (const [k, t] of Object.entries(committed.tensors)) {
          const f = fresh.tensors[k];
          assert.equal(f.dtype, t.dtype, `${e.file}: ${k}`);
          assert.deepEqual(f.shape, t.shape, `${e.file}: ${k}`);
          const a = Buffer.from(f.data.buffer, f.data.byteOffset, f.data.byteLength);
          const b = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
          assert.ok(a.equals(b), `${e.file}: tensor ${k} differs from the committed file PyTorch loaded`);
        }
        assert.deepEqual(Object.keys(committed.tensors).sort(), fx.rnnkit.find((r) => r.file === e.file)!.keys, `${e.file}: the keys PyTorch loaded strictly`);
      }
    });

    for (const r of fx.rnnkit) {
      test(`${r.file}: PyTorch ${fx.torch_version} loaded it (strict) and matched rnnkit within 1e-5`, () => {
        assert.ok(Number.isFinite(r.max_abs_diff) && r.max_abs_diff <= 1e-5, `${r.file}: recorded max |rnnkit − PyTorch| ${r.max_abs_diff}`);
        note('rnnkit → PyTorch (recorded)', r.max_abs_diff);
        console.log(`${r.file}: recorded max |rnnkit − PyTorch| ${r.max_abs_diff.toExponential(2)} (${Object.entries(r.max_abs_diff_per_output).map(([k, v]) => `${k} ${v.toExponential(1)}`).join(', ')})`);
      });
    }

    test('the rnnkit-written files load back into rnnkit with the same outputs (sequentialFromTorchFile for the model)', async () => {
      if (exports.length === 0) exports = await buildRnnkitExports(dir);
      for (const e of exports) {
        const file = fixture(e.file);
        const want = e.outputs;
        if (e.torch.module === 'Sequential') {
          const model = await sequentialFromTorchFile(file);
          const y = await model.predict(Tensor.from(Float32Array.from(e.input.data), e.input.shape));
          assertClose(y.data, want.output.data, { ...TOL, label: `${e.file} output` });
          continue;
        }
        const kind = e.torch.module as TorchKind;
        const cell = kind.endsWith('Cell');
        const layer = fromTorch(await loadTorchSafetensors(file), {
          kind, returnSequences: !cell, returnState: true, ...(e.torch.nonlinearity ? { nonlinearity: e.torch.nonlinearity as 'relu' } : {}),
        }) as Recurrent;
        if (cell) {
          const [Bn, I] = e.input.shape;
          const r = layer.forward(Tensor.from(Float32Array.from(e.input.data), [Bn, 1, I]), {
            initialState: [Tensor.from(Float32Array.from(e.h0!.data), e.h0!.shape), Tensor.from(Float32Array.from(e.c0!.data), e.c0!.shape)],
          });
          assertClose(r.states[0].data, want.h.data, { ...TOL, label: `${e.file} h` });
          assertClose(r.states[1].data, want.c.data, { ...TOL, label: `${e.file} c` });
        } else {
          const r = layer.forward(Tensor.from(Float32Array.from(e.input.data), e.input.shape));
          assertClose(r.output.data, want.output.data, { ...TOL, label: `${e.file} output` });
          assertClose(r.states[0].data, want.h_n.data, { ...TOL, label: `${e.file} h_n` });
          if (want.c_n) assertClose(r.states[1].data, want.c_n.data, { ...TOL, label: `${e.file} c_n` });
        }
      }
    });
  });

  describe('toTorch refuses by name what PyTorch cannot express', () => {
    const refusals: [string, () => unknown, RegExp][] = [
      ['peepholes', () => new LSTM({ inputSize: 3, units: 4, peepholes: true, seed: 1 }), /peephole/i],
      ['CIFG (coupledInputForget)', () => new LSTM({ inputSize: 3, units: 4, coupledInputForget: true, seed: 1 }), /coupled|CIFG/i],
      ['clip', () => new LSTM({ inputSize: 3, units: 4, clip: 3, seed: 1 }), /clip/i],
      ['GRU resetAfter: false', () => new GRU({ inputSize: 3, units: 4, resetAfter: false, seed: 1 }), /reset/i],
      ['Bidirectional mergeMode sum', () => new Bidirectional(new LSTM({ inputSize: 3, units: 4, seed: 1 }), { mergeMode: 'sum' }), /sum/],
      ['goBackwards', () => new SimpleRNN({ inputSize: 3, units: 4, goBackwards: true, seed: 1 }), /goBackwards|backwards/i],
    ];
    const dir = mkdtempSync(path.join(os.tmpdir(), 'rnnkit-torch-refuse-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    for (const [name, make, message] of refusals) {
      test(name, async () => {
        const layer = make() as Recurrent;
        let err: unknown;
        try {
          toTorch(layer);
        } catch (e) {
          err = e;
        }
        assert.ok(err instanceof UnsupportedFeatureError, `${name}: expected an UnsupportedFeatureError, got ${String(err)}`);
        assert.match(err.message, message);
        // Nothing is written, for the layer nor for a model holding it.
        const f = path.join(dir, `${name.replace(/\W+/g, '_')}.safetensors`);
        await assert.rejects(saveTorchSafetensors(layer, f), UnsupportedFeatureError);
        const model = new Sequential([layer as never, new Dense({ units: 2 })], { inputShape: [null, 3], seed: 2 });
        model.build();
        await assert.rejects(saveTorchSafetensors(model, f), UnsupportedFeatureError);
        assert.ok(!existsSync(f), `${name}: a file was written`);
        console.log(`${name}: ${err.message}`);
      });
    }
    test('a cell must be one layer and one direction', () => {
      assert.throws(() => toTorch(new LSTM({ inputSize: 3, units: 4, numLayers: 2, seed: 1 }), { cell: true }), /cell/);
      assert.throws(() => toTorch(new LSTM({ inputSize: 3, units: 4, bidirectional: true, seed: 1 }), { cell: true }), /cell/);
      assert.throws(() => toTorch(new LSTM({ inputSize: 3, units: 4, seed: 1 }), { bogus: 1 } as never), /bogus/);
    });
  });

  describe('malformed state dicts: the error names the key', () => {
    const load = (f: string) => loadTorchSafetensors(fixture(f));
    test('a missing key', async () => {
      const d = await load('torch_interop_lstm_bi.safetensors');
      delete d.weight_hh_l1_reverse;
      assert.throws(() => fromTorch(d, { kind: 'LSTM' }), (e: Error) => e instanceof TypeError && /missing weight_hh_l1_reverse/.test(e.message));
      const p = await load('torch_interop_rnn_tanh.safetensors');
      delete p['encoder.rnn.bias_hh_l0'];
      assert.throws(() => fromTorch(p, { kind: 'RNN', prefix: 'encoder.rnn.' }), /encoder\.rnn\.bias_hh_l0/);
      assert.throws(() => fromTorch(p, { kind: 'RNN', prefix: 'decoder.' }), /decoder\./);
    });
    test('an unexpected key', async () => {
      const d = await load('torch_interop_gru_bi.safetensors');
      d.weight_hr_l0 = Tensor.zeros([2, 5]);
      assert.throws(() => fromTorch(d, { kind: 'GRU' }), /weight_hr_l0/);
      const e = await load('torch_interop_gru_bi.safetensors');
      e.weight_extra_l0 = Tensor.zeros([3]);
      assert.throws(() => fromTorch(e, { kind: 'GRU' }), (err: Error) => err instanceof TypeError && /unexpected key weight_extra_l0/.test(err.message));
      const c = await load('torch_interop_lstm_cell.safetensors');
      c.weight_ih_l0 = c.weight_ih;
      assert.throws(() => fromTorch(c, { kind: 'LSTMCell' }), /weight_ih_l0/);
    });
    test('a wrong shape', async () => {
      const d = await load('torch_interop_lstm_proj.safetensors');
      d.weight_hh_l1 = Tensor.zeros([24, 4]);
      assert.throws(() => fromTorch(d, { kind: 'LSTM' }), (e: Error) => e instanceof RangeError && /weight_hh_l1/.test(e.message) && /\[24, 3\]|24.*3/.test(e.message));
      const c = await load('torch_interop_gru_cell.safetensors');
      c.bias_hh = Tensor.zeros([17]);
      assert.throws(() => fromTorch(c, { kind: 'GRUCell' }), (e: Error) => e instanceof RangeError && /bias_hh\b/.test(e.message));
    });
    test('a wrong kind (a GRU state dict read as an LSTM, an LSTM as a GRU cell)', async () => {
      const d = await load('torch_interop_gru_bi.safetensors');
      assert.throws(() => fromTorch(d, { kind: 'LSTM' }), /weight_ih_l0/);
      const l = await load('torch_interop_lstm_bi.safetensors');
      assert.throws(() => fromTorch(l, { kind: 'GRUCell' }), /weight_\w+_l0|layer suffix/);
      const g = await load('torch_interop_gru_time_major.safetensors'); // 3·6 = 18 rows: not 4 gates
      assert.throws(() => fromTorch(g, { kind: 'LSTM' }), /weight_ih_l0/);
    });
    test('an I64 tensor (the file and the key are named)', async () => {
      const f = fixture(fx.bad_i64.file);
      await assert.rejects(loadTorchSafetensors(f), (e: Error) => e instanceof TypeError && e.message.includes(f) && e.message.includes(fx.bad_i64.key) && /I64/.test(e.message));
      const { tensors } = await readSafetensorsFile(f);
      assert.throws(() => fromTorch(tensors, { kind: 'LSTM' }), (e: Error) => e.message.includes(fx.bad_i64.key) && /I64/.test(e.message));
    });
    test('unknown options and kinds', async () => {
      const d = await load('torch_interop_rnn_cell.safetensors');
      assert.throws(() => fromTorch(d, { kind: 'RNNCell', bogus: true } as never), /bogus/);
      assert.throws(() => fromTorch(d, { kind: 'Conv1d' as never }), /kind/);
      assert.throws(() => fromTorch(d, { kind: 'GRUCell', nonlinearity: 'relu' }), /nonlinearity/);
    });
  });

  describe('malformed files: a SafetensorsError naming the file (each in a child process)', () => {
    const self = fileURLToPath(import.meta.url);
    for (const name of Object.keys(MALFORMED)) {
      test(name, () => {
        const line = assertChildOk(runNodeChild(self, ['--malformed', name], { timeout: 60_000 }), name);
        console.log(`${name}: ${line}`);
      });
    }
  });
}
