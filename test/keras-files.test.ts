/**
 * Keras model files ↔ rnnkit (lib/io/keras-files.ts on top of lib/io/keras.ts).
 *
 * Fixtures: test/fixtures/gen_keras.py builds nine Keras models (Embedding, SimpleRNN, LSTM, GRU with
 * reset_after true and false, Bidirectional with concat/sum/ave/mul, Dense, TimeDistributed, Dropout,
 * Masking, RepeatVector) as Keras 3 `.keras` archives and legacy Keras 2 `.h5` files, to the structure
 * Keras writes (checked against the Keras source, cited there), and records inputs and the outputs
 * of an independent oracle (PyTorch modules holding the same weights; numpy for the reset-before GRU)
 * in keras_files.json.
 *
 * - every fixture loads with loadKerasFile and predicts the recorded outputs
 *   (|got − want| ≤ 1e-5·max(1, |want|); the largest difference is printed);
 * - describeKerasFile lists the datasets the generator wrote (paths and shapes);
 * - saveKerasFile → loadKerasFile predicts exactly what the loaded model predicted, and the file
 *   written has the fixtures' structure: the same zip entries, the same HDF5 groups and datasets
 *   (with shapes) in model.weights.h5, the same config.json / metadata.json keys;
 * - saveKerasFile(…, 'x.h5') (legacy Keras 2 .h5) → loadKerasFile predicts exactly
 *   what the loaded model predicted (and the oracle's outputs), and the file written has the .h5
 *   fixture's structure: the same HDF5 groups and datasets (shapes, dtypes), the same attributes on
 *   every object with the same layer_names / weight_names / keras_version / backend values, and a
 *   model_config with the fixture's keys; peepholes and projSize are refused by name, no file left;
 * - malformed files, each loaded in a child process (h5wasm is WebAssembly reading untrusted data):
 *   a clear KerasFormatError naming the file and the entry, never a crash.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { unzipSync, zipSync, strFromU8, strToU8 } from 'fflate';

import { Tensor, loadKerasFile, saveKerasFile, describeKerasFile, Sequential, LSTM, Dense } from '../lib/index.js';
import { compare } from './helpers/compare.js';
import { assertChildOk, repoRoot, runNodeChild } from './helpers/child.js';

const TOL = 1e-5;
const thisFile = new URL(import.meta.url).pathname;
const FIX = path.join(repoRoot, 'test', 'fixtures');

interface Case {
  name: string;
  doc: string;
  files: { keras3: string; keras2: string };
  layers: { name: string; className: string }[];
  inputDtype: 'int32' | 'float32';
  inputShape: number[];
  input: number[];
  lengths: number[] | null;
  outputShape: number[];
  /** The expected output (of the .keras file; of the .h5 too unless outputKeras2 is given). */
  output: number[];
  /** The .h5 (Keras 2) file's expected output where Keras 2 computes differently (its hard_sigmoid). */
  outputKeras2: number[] | null;
  datasets: { keras3: { path: string; shape: number[] }[]; keras2: { path: string; shape: number[] }[] };
  kerasConfigKeys: string[];
}

async function predict(m: Sequential, c: Case): Promise<Tensor> {
  const x = Tensor.from(Float32Array.from(c.input), c.inputShape);
  return m.predict(x, c.lengths ? { lengths: c.lengths } : {});
}

/** The HDF5 paths (groups and datasets, with dataset shapes) of an HDF5 file. */
async function h5Tree(bytes: Uint8Array): Promise<string[]> {
  const h5wasm = (await import('h5wasm/node')).default;
  await h5wasm.ready;
  const dir = mkdtempSync(path.join(tmpdir(), 'rnnkit-keras-tree-'));
  try {
    const p = path.join(dir, 'w.h5');
    writeFileSync(p, bytes);
    const f = new h5wasm.File(p, 'r');
    try {
      return f.paths().map((q) => {
        const e = f.get(q);
        return e instanceof h5wasm.Dataset ? `${q} [${(e.shape ?? []).join(', ')}] ${e.dtype}` : `${q}/`;
      }).sort();
    } finally {
      f.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Every HDF5 object's attributes (root ''), as [path, {name: value}], string-list values as arrays and model_config parsed. */
async function h5Attrs(file: string): Promise<Map<string, Record<string, unknown>>> {
  const h5wasm = (await import('h5wasm/node')).default;
  await h5wasm.ready;
  const f = new h5wasm.File(file, 'r');
  try {
    const out = new Map<string, Record<string, unknown>>();
    for (const p of ['', ...f.paths()]) {
      const o = p === '' ? f : f.get(p);
      if (!(o instanceof h5wasm.Group || o instanceof h5wasm.Dataset)) continue;
      const attrs: Record<string, unknown> = {};
      for (const [k, a] of Object.entries(o.attrs)) {
        const v = a.value;
        attrs[k] = k === 'model_config' ? JSON.parse(v as string) : ArrayBuffer.isView(v) ? [...(v as Float64Array)] : v;
        // the HDF5 type as h5py sees it: class (3 = string, 1 = float), variable-length or fixed, shape
        attrs[`${k} (HDF5 type)`] = `class ${a.metadata.type}${a.metadata.vlen ? ' vlen' : ' fixed'} shape [${(a.shape ?? []).join(', ')}]`;
      }
      out.set(p, attrs);
    }
    return out;
  } finally {
    f.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Malformed files, each loaded in a child process (this file with --keras-files-child <path>).

const childArg = process.argv.indexOf('--keras-files-child');
const fuzzArg = process.argv.indexOf('--keras-files-fuzz');
if (fuzzArg >= 0) {
  // Loads every file of a directory; each must load or give a KerasFormatError naming it.
  const dir = process.argv[fuzzArg + 1];
  const { readdirSync } = await import('node:fs');
  let loaded = 0, refused = 0;
  for (const name of readdirSync(dir).sort()) {
    const file = path.join(dir, name);
    try {
      await loadKerasFile(file);
      loaded++;
    } catch (e) {
      if (!(e instanceof Error) || e.name !== 'KerasFormatError' || !e.message.includes(file)) {
        console.log(`${name}: not a KerasFormatError naming the file: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
        process.exitCode = 5;
      }
      refused++;
    }
  }
  console.log(`ok: ${loaded} loaded, ${refused} refused`);
} else if (childArg >= 0) {
  const file = process.argv[childArg + 1];
  const describe = process.argv[childArg + 2] === 'describe';
  try {
    if (describe) await describeKerasFile(file);
    else await loadKerasFile(file);
    console.log('loaded: no error');
    process.exitCode = 3;
  } catch (e) {
    if (!(e instanceof Error)) {
      console.log(`threw a non-Error: ${String(e)}`);
      process.exitCode = 4;
    } else console.log(`ok: ${e.name}: ${e.message.replace(/\n/g, ' ')}`);
  }
} else {
  const fixtures = JSON.parse(readFileSync(path.join(FIX, 'keras_files.json'), 'utf8')) as { cases: Case[] };
  let largest = 0;

  for (const c of fixtures.cases) {
    for (const flavour of ['keras3', 'keras2'] as const) {
      const file = c.files[flavour];
      test(`${file} (${c.doc}) predicts the oracle's outputs`, async (t) => {
        const m = await loadKerasFile(path.join(FIX, file));
        assert.deepEqual(m.layers.map((l) => l.className), expectedClasses(c), 'the layers');
        const y = await predict(m, c);
        assert.deepEqual([...y.shape], c.outputShape, 'output shape');
        const want = flavour === 'keras2' && c.outputKeras2 ? c.outputKeras2 : c.output;
        const rep = compare(y.data as Float32Array, want, { rtol: TOL, atol: 0, floor: 1 });
        if (c.outputKeras2) {
          const other = compare(y.data as Float32Array, flavour === 'keras2' ? c.output : c.outputKeras2);
          t.diagnostic(`the other Keras's hard_sigmoid would be off by ${other.maxAbs.toExponential(3)}`);
          assert.ok(other.maxAbs > 1e-3, `${file}: the two Keras hard_sigmoids should differ visibly here`);
        }
        largest = Math.max(largest, rep.maxAbs);
        t.diagnostic(`largest |diff| ${rep.maxAbs.toExponential(3)} at ${rep.maxAbsIndex}`);
        console.log(`${file}: largest |diff| vs the PyTorch/numpy oracle ${rep.maxAbs.toExponential(3)}`);
        assert.ok(rep.worstRatio <= 1, `${file}: |diff| ${rep.maxAbs} at ${rep.maxAbsIndex} beyond 1e-5`);
      });
    }
    test(`${c.name}: describeKerasFile lists the datasets the generator wrote`, async () => {
      const d3 = await describeKerasFile(path.join(FIX, c.files.keras3));
      assert.equal(d3.format, 'keras3');
      assert.equal(d3.kerasVersion, '3.6.0');
      assert.deepEqual(d3.layers.map((l) => [l.name, l.className]), c.layers.map((l) => [l.name, l.className]));
      assert.deepEqual(d3.layers.flatMap((l) => l.weights), c.datasets.keras3);
      const d2 = await describeKerasFile(path.join(FIX, c.files.keras2));
      assert.equal(d2.format, 'keras-h5');
      assert.equal(d2.kerasVersion, '2.15.0');
      assert.deepEqual(d2.layers.map((l) => [l.name, l.className]), c.layers.map((l) => [l.name, l.className]));
      // legacy files list each layer's datasets in weight_names order; the generator wrote them by sorted layer name
      const sortKey = (a: { path: string }, b: { path: string }) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
      assert.deepEqual(d2.layers.flatMap((l) => l.weights).sort(sortKey), [...c.datasets.keras2].sort(sortKey));
    });
  }

  test('saveKerasFile → loadKerasFile: the same predictions, and the fixtures\' file structure', async (t) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rnnkit-keras-save-'));
    try {
      for (const c of fixtures.cases) {
        for (const flavour of ['keras3', 'keras2'] as const) {
          const src = path.join(FIX, c.files[flavour]);
          const m = await loadKerasFile(src);
          const y0 = await predict(m, c);
          const out = path.join(dir, `${c.name}-${flavour}.keras`);
          if (flavour === 'keras2' && c.outputKeras2) {
            // Keras 2's hard_sigmoid (slope 0.2) is not Keras 3's (slope 1/6): refused by name, never written wrong.
            await assert.rejects(saveKerasFile(m, out), (e: Error) => e.name === 'UnsupportedFeatureError' && /hardSigmoid/.test(e.message));
            continue;
          }
          await saveKerasFile(m, out);
          const back = await loadKerasFile(out);
          const y1 = await predict(back, c);
          const rep = compare(y1.data as Float32Array, y0.data as Float32Array);
          t.diagnostic(`${c.name} from ${flavour}: round trip largest |diff| ${rep.maxAbs.toExponential(3)}`);
          assert.equal(rep.maxAbs, 0, `${c.name} (${flavour}): the saved file predicts differently (|diff| ${rep.maxAbs})`);
          const vs = compare(y1.data as Float32Array, c.output, { rtol: TOL, floor: 1 });
          assert.ok(vs.worstRatio <= 1, `${c.name}: the saved file is off the oracle by ${vs.maxAbs}`);

          // The structure, against the generator's .keras fixture of the same model.
          const mine = unzipSync(new Uint8Array(readFileSync(out)));
          const ref = unzipSync(new Uint8Array(readFileSync(path.join(FIX, c.files.keras3))));
          assert.deepEqual(Object.keys(mine).sort(), Object.keys(ref).sort(), `${c.name}: zip entries`);
          assert.deepEqual(await h5Tree(mine['model.weights.h5']), await h5Tree(ref['model.weights.h5']), `${c.name}: model.weights.h5 groups and datasets`);
          const cfg = JSON.parse(strFromU8(mine['config.json'])), want = JSON.parse(strFromU8(ref['config.json']));
          assert.deepEqual(Object.keys(cfg).filter((k) => k !== 'compile_config').sort(), c.kerasConfigKeys, `${c.name}: config.json keys`);
          assert.deepEqual(Object.keys(cfg.config).sort(), Object.keys(want.config).sort(), `${c.name}: config.json config keys`);
          assert.deepEqual(cfg.config.layers.map((l: { class_name: string }) => l.class_name), want.config.layers.map((l: { class_name: string }) => l.class_name));
          for (const [i, l] of (cfg.config.layers as Record<string, unknown>[]).entries()) {
            for (const k of ['module', 'class_name', 'config', 'registered_name']) assert.ok(k in l, `${c.name}: config.json layer ${i} has '${k}'`);
          }
          assert.deepEqual(Object.keys(JSON.parse(strFromU8(mine['metadata.json']))).sort(), Object.keys(JSON.parse(strFromU8(ref['metadata.json']))).sort());
          const d = await describeKerasFile(out);
          assert.deepEqual(d.layers.flatMap((l) => l.weights), c.datasets.keras3, `${c.name}: the saved datasets`);
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('saveKerasFile(…, .h5) → loadKerasFile: the same predictions, and the .h5 fixtures\' file structure', async (t) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rnnkit-keras-h5-save-'));
    try {
      for (const c of fixtures.cases) {
        for (const flavour of ['keras2', 'keras3'] as const) {
          const m = await loadKerasFile(path.join(FIX, c.files[flavour]));
          const y0 = await predict(m, c);
          const out = path.join(dir, `${c.name}-${flavour}.h5`);
          if (flavour === 'keras3' && c.outputKeras2) {
            // Keras 3's hard_sigmoid (slope 1/6) is not Keras 2's (slope 0.2): refused by name, nothing written.
            await assert.rejects(saveKerasFile(m, out), (e: Error) => e.name === 'UnsupportedFeatureError' && /activation/.test(e.message) && /LSTM/.test(e.message));
            assert.equal(existsSync(out), false, `${c.name}: no file after a refusal`);
            continue;
          }
          await saveKerasFile(m, out); // .h5 → the legacy format
          const back = await loadKerasFile(out);
          assert.deepEqual(back.layers.map((l) => l.className), expectedClasses(c), 'the layers');
          const y1 = await predict(back, c);
          const rep = compare(y1.data as Float32Array, y0.data as Float32Array);
          t.diagnostic(`${c.name} from ${flavour}: .h5 round trip largest |diff| ${rep.maxAbs.toExponential(3)}`);
          assert.equal(rep.maxAbs, 0, `${c.name} (${flavour}): the saved .h5 predicts differently (|diff| ${rep.maxAbs})`);
          const vs = compare(y1.data as Float32Array, c.outputKeras2 ?? c.output, { rtol: TOL, floor: 1 });
          t.diagnostic(`${c.name} from ${flavour}: saved .h5 vs the oracle largest |diff| ${vs.maxAbs.toExponential(3)}`);
          assert.ok(vs.worstRatio <= 1, `${c.name}: the saved .h5 is off the oracle by ${vs.maxAbs}`);

          // The structure, against the generator's .h5 fixture of the same model. rnnkit does not keep
          // Keras layer names (it names layers as a fresh Keras model would: simple_rnn, dense, …), so
          // the fixture's layer names (layer_names, position by position) are mapped to the saved ones.
          const refFile = path.join(FIX, c.files.keras2);
          const mine = await h5Attrs(out), ref = await h5Attrs(refFile);
          const names = (a: Map<string, Record<string, unknown>>) => a.get('model_weights')!.layer_names as string[];
          assert.equal(names(mine).length, names(ref).length, `${c.name}: layer_names`);
          const rename = new Map(names(ref).map((n, i) => [n, names(mine)[i]]));
          for (const [from, to] of rename) if (from !== to) t.diagnostic(`${c.name}: the fixture's layer ${from} is ${to} in rnnkit's file`);
          const rn = (q: string) => q.split('/').map((seg) => rename.get(seg) ?? seg).join('/');
          assert.deepEqual(await h5Tree(new Uint8Array(readFileSync(out))), (await h5Tree(new Uint8Array(readFileSync(refFile)))).map(rn).sort(), `${c.name}: groups and datasets (shapes, dtypes)`);
          assert.deepEqual([...mine.keys()].sort(), [...ref.keys()].map(rn).sort(), `${c.name}: HDF5 objects`);
          for (const [p, want] of ref) {
            const got = mine.get(rn(p))!;
            assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort(), `${c.name}: attributes of /${p}`);
            for (const k of Object.keys(want).filter((n) => n.endsWith('(HDF5 type)'))) assert.equal(got[k], want[k], `${c.name}: /${p} attribute ${k}`);
            for (const k of ['layer_names', 'weight_names', 'keras_version', 'backend']) {
              if (k in want) assert.deepEqual(got[k], Array.isArray(want[k]) ? (want[k] as unknown[]).map((v) => (typeof v === 'string' ? rn(v) : v)) : want[k], `${c.name}: /${p} attribute ${k}`);
            }
          }
          const cfg = mine.get('')!.model_config as { class_name: string; config: { layers: { class_name: string; config: object }[] } };
          const wantCfg = ref.get('')!.model_config as typeof cfg;
          assert.deepEqual(Object.keys(cfg).sort(), Object.keys(wantCfg).sort(), `${c.name}: model_config keys`);
          assert.equal(cfg.class_name, 'Sequential');
          assert.deepEqual(Object.keys(cfg.config).sort(), Object.keys(wantCfg.config).sort(), `${c.name}: model_config config keys`);
          assert.deepEqual(cfg.config.layers.map((l) => l.class_name), wantCfg.config.layers.map((l) => l.class_name), `${c.name}: model_config layers`);
          for (const [i, l] of cfg.config.layers.entries()) assert.deepEqual(Object.keys(l).sort(), Object.keys(wantCfg.config.layers[i]).sort(), `${c.name}: model_config layer ${i} keys`);
          const d = await describeKerasFile(out);
          assert.equal(d.format, 'keras-h5');
          assert.equal(d.kerasVersion, '2.15.0');
          const sortKey = (a: { path: string }, b: { path: string }) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
          assert.deepEqual(d.layers.flatMap((l) => l.weights).sort(sortKey), c.datasets.keras2.map((w) => ({ ...w, path: rn(w.path) })).sort(sortKey), `${c.name}: the saved datasets`);
        }
      }
      // format option: .keras when asked, whatever the extension; unknown options are errors
      const m = await loadKerasFile(path.join(FIX, fixtures.cases[0].files.keras2));
      const k3 = path.join(dir, 'as-keras3.h5');
      await saveKerasFile(m, k3, { format: 'keras3' });
      assert.equal((await describeKerasFile(k3)).format, 'keras3');
      const h5 = path.join(dir, 'as-h5.keras');
      await saveKerasFile(m, h5, { format: 'keras-h5' });
      assert.equal((await describeKerasFile(h5)).format, 'keras-h5');
      await assert.rejects(saveKerasFile(m, h5, { format: 'onnx' as 'keras3' }), TypeError);
      await assert.rejects(saveKerasFile(m, h5, { fromat: 'keras3' } as object), /unknown option/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('saveKerasFile to .h5 refuses what Keras cannot express by name (peepholes, projSize) and leaves no file', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rnnkit-keras-h5-refuse-'));
    try {
      const peep = new Sequential([new LSTM({ units: 4, peepholes: true, inputSize: 3 }), new Dense({ units: 2 })], { seed: 5 });
      peep.build([5, 3]);
      const proj = new Sequential([new LSTM({ units: 4, projSize: 2, inputSize: 3 })], { seed: 6 });
      proj.build([5, 3]);
      for (const [m, feature] of [[peep, /peephole/i], [proj, /proj/i]] as const) {
        for (const [save, out] of [[(p: string) => saveKerasFile(m, p), path.join(dir, 'refused.h5')], [(p: string) => saveKerasFile(m, p, { format: 'keras-h5' }), path.join(dir, 'refused.keras')]] as const) {
          await assert.rejects(save(out), (e: Error) => e.name === 'UnsupportedFeatureError' && feature.test(e.message));
          assert.equal(existsSync(out), false, 'no file written');
          assert.deepEqual(readdirSync(dir), [], 'no temp file left');
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the largest difference over every fixture', () => {
    console.log(`largest |diff| over every Keras fixture vs the oracle: ${largest.toExponential(3)}`);
    assert.ok(largest > 0 && largest <= TOL);
  });

  test('malformed files: a clear error naming the file and the entry, never a crash (each in a child process)', async (t) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rnnkit-keras-bad-'));
    try {
      const good = new Uint8Array(readFileSync(path.join(FIX, 'keras_gru_reset_after.keras')));
      const goodH5 = new Uint8Array(readFileSync(path.join(FIX, 'keras_gru_reset_after.h5')));
      const entries = unzipSync(good);
      const write = (name: string, bytes: Uint8Array): string => {
        const p = path.join(dir, name);
        writeFileSync(p, bytes);
        return p;
      };
      const rezip = (name: string, change: (e: Record<string, Uint8Array>) => void): string => {
        const e = { ...entries };
        change(e);
        return write(name, zipSync(Object.fromEntries(Object.entries(e).map(([k, v]) => [k, [v, { level: 0 }]])) as Parameters<typeof zipSync>[0]));
      };
      const config = (change: (c: { config: { layers: { class_name: string; config: Record<string, unknown> }[] } }) => void): Uint8Array => {
        const c = JSON.parse(strFromU8(entries['config.json']));
        change(c);
        return strToU8(JSON.stringify(c));
      };
      /** The archive with one central-directory field of an entry overwritten (offsets per APPNOTE 4.3.12). */
      const patchCentral = (name: string, entry: string, fields: { offset: number; value: number; size: 2 | 4 }[]): string => {
        const b = good.slice();
        const v = new DataView(b.buffer);
        for (let at = 0; at + 46 <= b.length; at++) {
          if (v.getUint32(at, true) !== 0x02014b50) continue;
          const n = v.getUint16(at + 28, true);
          if (strFromU8(b.subarray(at + 46, at + 46 + n)) !== entry) continue;
          for (const f of fields) {
            if (f.size === 4) v.setUint32(at + f.offset, f.value, true);
            else v.setUint16(at + f.offset, f.value, true);
          }
          return write(name, b);
        }
        throw new Error(`no central directory entry ${entry}`);
      };
      const cases: [string, string, RegExp, string?][] = [
        ['a truncated zip', write('truncated.keras', good.subarray(0, Math.floor(good.length * 0.6))), /not a readable zip archive/],
        ['a zip without config.json', rezip('noconfig.keras', (e) => { delete e['config.json']; }), /has no config\.json/],
        ['config.json not JSON', rezip('notjson.keras', (e) => { e['config.json'] = strToU8('{"module": "keras", "class_name": '); }), /config\.json is not valid JSON/],
        ['a zip without model.weights.h5', rezip('noweights.keras', (e) => { delete e['model.weights.h5']; }), /has no model\.weights\.h5/],
        ['weights of another model (missing weights group)', rezip('othermodel.keras', (e) => {
          e['model.weights.h5'] = unzipSync(new Uint8Array(readFileSync(path.join(FIX, 'keras_bilstm_sum.keras'))))['model.weights.h5'];
        }), /model\.weights\.h5: weights group layers\/gru\/cell\/vars is missing/],
        ['a missing weight dataset (.keras)', path.join(FIX, 'keras_bad_missing_dataset.keras'), /layer gru: expected 3 weights/],
        ['a missing weight dataset (.h5)', path.join(FIX, 'keras_bad_missing_dataset.h5'), /weight dataset model_weights\/gru\/gru\/gru_cell\/bias:0 is missing/],
        ['a dataset shape mismatch (config says 4 units, weights have 5)', rezip('shape.keras', (e) => {
          e['config.json'] = config((c) => { c.config.layers[1].config.units = 4; });
        }), /layer gru: weight layers\/gru\/cell\/vars\/[01] \((kernel|recurrent_kernel)\): expected shape \[[^\]]*\], got \[\d, 15\]/],
        ['an unknown layer class', rezip('unknown.keras', (e) => {
          e['config.json'] = config((c) => { c.config.layers[1].class_name = 'ConvLSTM1D'; });
        }), /unknown layer class "ConvLSTM1D"/],
        ['a dataset declaring 4 TiB', path.join(FIX, 'keras_bad_huge_dataset.keras'), /layers\/gru\/cell\/vars\/0: declares shape \[1048576, 1048576\] \(4398046511104 bytes\), more than the file/],
        ['an integer weight dataset', path.join(FIX, 'keras_bad_int_dataset.h5'), /kernel:0: expected float32 or float64 values, got HDF5 type class 0/],
        ['a weights-only .h5 (no model_config)', path.join(FIX, 'keras_bad_weights_only.h5'), /no model_config attribute/],
        ['a huge declared uncompressed size (deflate, 4 GiB)', patchCentral('huge.keras', 'model.weights.h5', [{ offset: 10, value: 8, size: 2 }, { offset: 24, value: 0xfffffff0, size: 4 }]),
          /zip entry model\.weights\.h5: declares 4294967280 uncompressed bytes, beyond the limit/],
        ['a deflated entry declaring more than deflate expands to', patchCentral('ratio.keras', 'config.json', [{ offset: 10, value: 8, size: 2 }, { offset: 24, value: 200_000_000, size: 4 }]),
          /zip entry config\.json: declares 200000000 uncompressed bytes from \d+ deflated ones/],
        ['a stored entry whose sizes disagree', patchCentral('stored.keras', 'model.weights.h5', [{ offset: 24, value: 1 << 20, size: 4 }]),
          /zip entry model\.weights\.h5: stored \(uncompressed\) but declares \d+ bytes in the archive and 1048576 uncompressed/],
        ['model.weights.h5 not an HDF5 file', rezip('noth5.keras', (e) => { e['model.weights.h5'] = strToU8('just some text, not HDF5 at all'); }), /model\.weights\.h5: not an HDF5 file/],
        ['a truncated model.weights.h5', rezip('trunch5.keras', (e) => { e['model.weights.h5'] = e['model.weights.h5'].subarray(0, 3000); }), /model\.weights\.h5: (HDF5|weights group|weight dataset)/],
        ['a truncated legacy .h5', write('truncated.h5', goodH5.subarray(0, Math.floor(goodH5.length / 2))), /HDF5|weights group|weight dataset|model_config/],
        ['neither zip nor HDF5', write('random.keras', Uint8Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) & 0xff)), /neither a Keras 3 \.keras file .* nor a legacy Keras \.h5 file/],
        ['describe: a zip without config.json', rezip('noconfig2.keras', (e) => { delete e['config.json']; }), /has no config\.json/, 'describe'],
        ['describe: a truncated model.weights.h5', rezip('trunch5b.keras', (e) => { e['model.weights.h5'] = e['model.weights.h5'].subarray(0, 3000); }), /model\.weights\.h5: (HDF5|weights group|weight dataset)/, 'describe'],
      ];
      for (const [what, file, re, mode] of cases) {
        const line = assertChildOk(runNodeChild(thisFile, ['--keras-files-child', file, ...(mode ? [mode] : [])], { timeout: 60_000 }), what);
        t.diagnostic(`${what}: ${line}`);
        assert.match(line, /^ok: KerasFormatError: /, `${what}: a KerasFormatError`);
        assert.match(line, re, `${what}: the error should name the problem`);
        assert.ok(line.includes(file), `${what}: the error should name the file`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('corrupted bytes inside model.weights.h5 and .h5 files: each loads or is refused by name, never a crash (one child process)', async (t) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rnnkit-keras-fuzz-'));
    try {
      let s = 20261202;
      const rnd = () => { s = (Math.imul(s, 1103515245) + 12345) >>> 0; return s / 2 ** 32; };
      const corrupt = (b: Uint8Array): Uint8Array => {
        const h = b.slice();
        const n = 1 + Math.floor(rnd() * 8);
        for (let k = 0; k < n; k++) h[Math.floor(rnd() * h.length)] = Math.floor(rnd() * 256);
        return h;
      };
      for (const [k, name] of ['keras_bilstm_sum', 'keras_embed_lstm_td', 'keras_gru_reset_before'].entries()) {
        const e = unzipSync(new Uint8Array(readFileSync(path.join(FIX, `${name}.keras`))));
        const h5 = new Uint8Array(readFileSync(path.join(FIX, `${name}.h5`)));
        for (let i = 0; i < 16; i++) {
          writeFileSync(path.join(dir, `k${k}-${i}.keras`), zipSync({ 'config.json': [e['config.json'], { level: 0 }], 'model.weights.h5': [corrupt(e['model.weights.h5']), { level: 0 }] }));
          writeFileSync(path.join(dir, `h${k}-${i}.h5`), corrupt(h5));
        }
      }
      const line = assertChildOk(runNodeChild(thisFile, ['--keras-files-fuzz', dir], { timeout: 120_000 }), 'corrupted files');
      t.diagnostic(line);
      console.log(`corrupted Keras files: ${line}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

/** rnnkit's layer classes for a fixture (Keras's, one to one). */
function expectedClasses(c: Case): string[] {
  return c.layers.map((l) => l.className);
}
