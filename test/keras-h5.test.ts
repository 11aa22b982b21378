/**
 * Writing legacy Keras `.h5` files (lib/io/keras-h5.ts): every `.h5` fixture (built to Keras's
 * structure by test/fixtures/gen_keras.py, with PyTorch/numpy oracle outputs) is loaded, written
 * back by rnnkit, and
 * - the written file predicts the fixture's oracle output (1e-5) when loaded again;
 * - its HDF5 structure is the fixture's: root attributes, model_weights' layer_names, each layer
 *   group's weight_names, the dataset paths under it, their shapes and float32 dtype, and the
 *   model_config's class and layer classes (layer names are rnnkit's own, so they are compared
 *   after renaming);
 * - a model Keras cannot express (peepholes, a projection) is refused by name and leaves no file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { LSTM, Sequential, Tensor, UnsupportedFeatureError, loadKerasFile, saveKerasH5File } from '../lib/index.js';
import { compare } from './helpers/compare.js';
import { repoRoot } from './helpers/child.js';

const FIX = path.join(repoRoot, 'test', 'fixtures');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-h5-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

interface Case {
  name: string;
  files: { keras3: string; keras2: string };
  inputShape: number[];
  input: number[];
  lengths: number[] | null;
  output: number[];
  outputKeras2: number[] | null;
}
const cases = (JSON.parse(fs.readFileSync(path.join(FIX, 'keras_files.json'), 'utf8')) as { cases: Case[] }).cases;

interface Tree {
  attrs: Record<string, unknown>;
  layerNames: string[];
  layers: { weightNames: string[]; datasets: { path: string; shape: number[]; dtype: string }[] }[];
  config: { className: string; layers: string[] };
}

/** The structure of a legacy .h5 model file, read with h5wasm directly (not through rnnkit's reader). */
async function tree(file: string): Promise<Tree> {
  const h5wasm = (await import('h5wasm/node')).default;
  await h5wasm.ready;
  const f = new h5wasm.File(file, 'r');
  try {
    const str = (v: unknown): string => (v instanceof Uint8Array ? Buffer.from(v).toString('utf8') : String(v));
    const list = (v: unknown): string[] => (Array.isArray(v) ? v.map(str) : v === null || v === undefined || (ArrayBuffer.isView(v) && (v as unknown as ArrayLike<number>).length === 0) ? [] : [str(v)]);
    const attrs = Object.fromEntries(Object.keys(f.attrs).map((k) => [k, k === 'model_config' ? 'json' : str(f.attrs[k].value)]));
    const mw = f.get('model_weights') as InstanceType<typeof h5wasm.Group>;
    const layerNames = list(mw.attrs.layer_names.value);
    const layers = layerNames.map((n) => {
      const g = mw.get(n) as InstanceType<typeof h5wasm.Group>;
      const weightNames = list(g.attrs.weight_names?.value);
      const datasets = weightNames.map((w) => {
        const d = f.get(`model_weights/${n}/${w}`) as InstanceType<typeof h5wasm.Dataset>;
        assert.ok(d, `${file}: dataset model_weights/${n}/${w}`);
        return { path: w, shape: d.shape ?? [], dtype: d.dtype as string };
      });
      return { weightNames, datasets };
    });
    const mc = JSON.parse(str(f.attrs.model_config.value)) as { class_name: string; config: { layers: { class_name: string }[] } };
    return { attrs, layerNames, layers, config: { className: mc.class_name, layers: mc.config.layers.map((l) => l.class_name).filter((c) => c !== 'InputLayer') } };
  } finally {
    f.close();
  }
}

/** Replaces each layer name (and its occurrences in weight paths) by its index, so trees of differently named models compare. */
function anonymous(t: Tree): unknown {
  const rename = (s: string): string => t.layerNames.reduce((acc, n, i) => acc.split(`${n}/`).join(`<${i}>/`), s);
  return {
    attrs: Object.keys(t.attrs).sort(),
    layers: t.layers.map((l) => ({ weightNames: l.weightNames.map(rename), datasets: l.datasets.map((d) => ({ ...d, path: rename(d.path) })) })),
    config: t.config,
  };
}

for (const c of cases) {
  test(`${c.files.keras2}: rnnkit writes it back as .h5 with Keras's structure, predicting the oracle`, async () => {
    const src = path.join(FIX, c.files.keras2);
    const model = await loadKerasFile(src);
    const out = path.join(tmp, c.files.keras2);
    await saveKerasH5File(model, out);
    const back = await loadKerasFile(out);
    const y = await back.predict(Tensor.from(Float32Array.from(c.input), c.inputShape), c.lengths ? { lengths: c.lengths } : {});
    const want = c.outputKeras2 ?? c.output;
    const rep = compare(y.data as ArrayLike<number>, want, { rtol: 1e-5, floor: 1 });
    console.log(`${c.files.keras2}: rnnkit-written .h5 vs oracle: largest |diff| ${rep.maxAbs.toExponential(3)}`);
    assert.ok(rep.worstRatio <= 1, `${c.name}: differs by ${rep.maxAbs}`);
    const [a, b] = [await tree(src), await tree(out)];
    assert.deepEqual(anonymous(b), anonymous(a), `${c.files.keras2}: the structure of the written file`);
    for (const l of b.layers) for (const d of l.datasets) assert.match(d.dtype, /<f/, `${d.path}: float32`);
    assert.equal(b.attrs.backend, 'tensorflow');
    assert.match(String(b.attrs.keras_version), /^2\./);
  });
}

test('saveKerasH5File refuses what Keras cannot express, by name, and writes nothing', async () => {
  for (const [options, feature] of [[{ peepholes: true }, /peepholes/], [{ projSize: 2 }, /projection/]] as const) {
    const m = new Sequential([new LSTM({ units: 4, inputSize: 3, ...options })], { seed: 1 });
    m.build([5, 3]);
    const out = path.join(tmp, 'refused.h5');
    await assert.rejects(saveKerasH5File(m, out), (e: unknown) => e instanceof UnsupportedFeatureError && feature.test((e as Error).message));
    assert.equal(fs.existsSync(out), false);
  }
  await assert.rejects(saveKerasH5File({} as Sequential, path.join(tmp, 'x.h5')), TypeError);
  await assert.rejects(saveKerasH5File(new Sequential([new LSTM({ units: 2, inputSize: 2 })]), ''), TypeError);
});
