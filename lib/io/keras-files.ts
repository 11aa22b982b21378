// Keras model files: Keras 3 `.keras` archives and legacy (Keras 2 / tf.keras) `.h5` files, read with
// fflate (zip) and h5wasm (HDF5); the model descriptions and weight layouts are lib/io/keras.ts's.
//
// `.keras` (keras/src/saving/saving_lib.py, `_save_model_to_fileobj`): a zip of `config.json`
// (serialize_keras_object(model)), `metadata.json` ({keras_version, date_saved}) and
// `model.weights.h5`, which H5IOStore/H5Entry fill through `_save_state`: every saveable object gets a
// group `<inner_path>/vars` holding its own variables as datasets "0", "1", … in the order
// `_trainable_variables + _non_trainable_variables` (keras/src/layers/layer.py `save_own_variables`).
// The model is `/vars` (empty). `_walk_saveable` visits a Sequential's `layers` first and
// `_save_container_state` names each entry of that list by `naming.to_snake_case(class name)` with
// `_1`, `_2`, … for repeats — by class, not by layer.name — so a model's layers are `layers/lstm`,
// `layers/lstm_1`, `layers/time_distributed`, … Sub-layers are attributes: an RNN layer's `cell`
// (`layers/lstm/cell/vars/0..2` = kernel, recurrent_kernel, bias; keras/src/layers/rnn/rnn.py and the
// cells' `build` in lstm.py, gru.py, simple_rnn.py), Bidirectional's `forward_layer` and
// `backward_layer` (keras/src/layers/rnn/bidirectional.py), TimeDistributed's `layer`
// (keras/src/layers/rnn/time_distributed.py). Keras 2.13–2.15 wrote `_layer_checkpoint_dependencies`
// where Keras 3 writes `layers`; H5Entry falls back to it, and so does this reader.
//
// `.h5` (keras/src/legacy/saving/legacy_h5_format.py `save_model_to_hdf5`,
// `save_weights_to_hdf5_group`): root attributes `model_config` (JSON), `keras_version`, `backend`;
// group `model_weights` with attribute `layer_names`; one group per layer (by layer.name) with
// attribute `weight_names` ('lstm/lstm_cell/kernel:0', … in get_weights() order) naming datasets
// relative to that group. Long attributes may be split into `<name>0`, `<name>1`, …
// (`save_attributes_to_hdf5_group`); both spellings are read.
//
// Untrusted input: the zip's entry sizes are checked against the archive before anything is inflated
// (a declared size beyond KERAS_MAX_ENTRY_BYTES, or beyond what the entry's compressed bytes can hold, is
// refused), every dataset's declared size is checked against the file's size before it is read, and
// every HDF5 file opened is closed. Errors are KerasFormatError naming the file and the entry.
import fs from 'node:fs';
import os from 'node:os';
import nodePath from 'node:path';
import { unzipSync, zipSync, strToU8, strFromU8, type Unzipped } from 'fflate';
import { Sequential } from '../model/sequential.js';
import { checkOptions, show } from '../options.js';
import { writeFileAtomic } from './files.js';
import { KerasFormatError, modelFromKeras, modelToKeras, type KerasFlavour, type KerasWeight } from './keras.js';

type H5 = typeof import('h5wasm/node').default;
type H5File = InstanceType<H5['File']>;
type H5Group = InstanceType<H5['Group']>;
type H5Dataset = InstanceType<H5['Dataset']>;

/** The largest uncompressed zip entry (or compressed HDF5 dataset) read, in bytes: 2 GiB. */
export const KERAS_MAX_ENTRY_BYTES = 2 * 1024 ** 3;
/** The largest JSON entry or attribute read (bytes). */
const MAX_JSON_BYTES = 256 * 1024 ** 2;
/** deflate's largest expansion (258 bytes from ~2 bits: 1032:1), with slack for the stream's end. */
const DEFLATE_MAX_RATIO = 1032;
const HDF5_MAGIC = Uint8Array.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);
const ZIP_MAGIC = Uint8Array.from([0x50, 0x4b, 0x03, 0x04]);

const CONFIG = 'config.json';
const METADATA = 'metadata.json';
const WEIGHTS = 'model.weights.h5';
const KERAS3_VERSION_WRITTEN = '3.6.0';

/** What describeKerasFile reports: the format, the Keras version that wrote it, and each layer's weight datasets. */
export interface KerasFileDescription {
  format: 'keras3' | 'keras-h5';
  /** metadata.json's keras_version (.keras) or the keras_version attribute (.h5); null when absent. */
  kerasVersion: string | null;
  /** The model's layers (Keras's model.layers: no InputLayer), with the path and shape of each weight dataset in get_weights() order. */
  layers: { name: string; className: string; weights: { path: string; shape: number[] }[] }[];
}

let h5Promise: Promise<H5> | undefined;
/** h5wasm's Node build (it reads and writes real paths), loaded on first use. */
async function h5(): Promise<H5> {
  h5Promise ??= import('h5wasm/node').then(async (m) => {
    await m.default.ready;
    return m.default;
  });
  return h5Promise;
}

const err = (file: string, msg: string): KerasFormatError => new KerasFormatError(`${file}: ${msg}`);
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const startsWith = (b: Uint8Array, magic: Uint8Array, at = 0): boolean => b.length >= at + magic.length && magic.every((x, i) => b[at + i] === x);

/** Whether bytes are an HDF5 file: the signature at 0 or at a user-block offset 512, 1024, 2048, … */
function isHdf5(b: Uint8Array): boolean {
  if (startsWith(b, HDF5_MAGIC)) return true;
  for (let at = 512; at + 8 <= b.length; at *= 2) if (startsWith(b, HDF5_MAGIC, at)) return true;
  return false;
}

async function readBytes(path: string, what: string): Promise<Uint8Array> {
  if (typeof path !== 'string' || path.length === 0) throw new TypeError(`${what}: path must be a non-empty string, got ${show(path)}`);
  return new Uint8Array(await fs.promises.readFile(path)); // a missing file is node's ENOENT error, naming the path
}

// ---------------------------------------------------------------------------------------------
// zip

/**
 * The entries `wanted` of a zip archive, each size checked before it is inflated: a stored entry's
 * sizes must agree, a deflated one may not declare more than its compressed bytes can hold, and no
 * entry may exceed KERAS_MAX_ENTRY_BYTES (nor MAX_JSON_BYTES for a .json entry).
 */
function unzipChecked(file: string, bytes: Uint8Array, wanted: readonly string[]): Unzipped {
  let out: Unzipped;
  const declared = new Map<string, number>();
  try {
    out = unzipSync(bytes, {
      filter: (f) => {
        if (!wanted.includes(f.name)) return false;
        const limit = f.name.endsWith('.json') ? MAX_JSON_BYTES : KERAS_MAX_ENTRY_BYTES;
        if (f.size > bytes.length) throw err(file, `zip entry ${f.name}: ${f.size} compressed bytes declared, more than the archive's ${bytes.length}`);
        if (f.originalSize > limit) throw err(file, `zip entry ${f.name}: declares ${f.originalSize} uncompressed bytes, beyond the limit of ${limit}`);
        if (f.compression === 0 && f.originalSize !== f.size) throw err(file, `zip entry ${f.name}: stored (uncompressed) but declares ${f.size} bytes in the archive and ${f.originalSize} uncompressed`);
        if (f.compression === 8 && f.originalSize > f.size * DEFLATE_MAX_RATIO + 1024) {
          throw err(file, `zip entry ${f.name}: declares ${f.originalSize} uncompressed bytes from ${f.size} deflated ones, more than deflate can expand to`);
        }
        if (f.compression !== 0 && f.compression !== 8) throw err(file, `zip entry ${f.name}: compression method ${f.compression} is not supported (stored or deflate)`);
        declared.set(f.name, f.originalSize);
        return true;
      },
    });
  } catch (e) {
    if (e instanceof KerasFormatError) throw e;
    throw err(file, `not a readable zip archive (${(e as Error).message}); a .keras file is a zip of ${CONFIG}, ${METADATA} and ${WEIGHTS}`);
  }
  for (const [name, n] of declared) {
    if (out[name]?.length !== n) throw err(file, `zip entry ${name}: truncated or corrupt (declares ${n} bytes, holds ${out[name]?.length ?? 0})`);
  }
  return out;
}

function parseJson(file: string, what: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw err(file, `${what} is not valid JSON (${(e as Error).message})`);
  }
}

// ---------------------------------------------------------------------------------------------
// HDF5 reading

/** Runs `body` on the HDF5 file at `diskPath` (opened read-only) and closes it. `file` names it in errors. */
async function withH5<T>(file: string, diskPath: string, bytes: Uint8Array, body: (f: H5File, lib: H5) => T): Promise<T> {
  if (!isHdf5(bytes)) throw err(file, 'not an HDF5 file (no HDF5 signature)');
  const lib = await h5();
  let f: H5File | undefined;
  try {
    f = new lib.File(diskPath, 'r');
    if (typeof f.file_id !== 'bigint' || f.file_id < 0n) throw err(file, 'HDF5: the file cannot be opened (corrupt or truncated)');
    return body(f, lib);
  } catch (e) {
    if (e instanceof KerasFormatError || e instanceof TypeError || e instanceof RangeError) throw e;
    throw err(file, `HDF5: ${(e as Error)?.message ?? String(e)}`);
  } finally {
    if (f && typeof f.file_id === 'bigint' && f.file_id >= 0n) {
      try { f.close(); } catch { /* already failing */ }
    }
  }
}

/** A string attribute (or undefined), read whether stored as a variable- or fixed-length string or bytes. */
function stringAttr(file: string, obj: H5Group, name: string, where: string, fileBytes: number): string | undefined {
  return at(file, `${where}${name}`, () => stringAttrUnchecked(file, obj, name, where, fileBytes));
}

/** Refuses an attribute whose declared (fixed-size) data is larger than the file or MAX_JSON_BYTES, before reading it. */
function checkAttrSize(file: string, a: { metadata?: { size?: number; vlen?: boolean }; shape: number[] | null }, label: string, fileBytes: number): void {
  const count = (a.shape ?? []).reduce((x, y) => x * y, 1);
  const n = (a.metadata?.size ?? 0) * count;
  const cap = Math.min(MAX_JSON_BYTES, fileBytes);
  if (!Number.isSafeInteger(n) || n > cap || count > fileBytes) throw err(file, `attribute ${label}: declares ${n} bytes (${count} elements), more than the file (${fileBytes} bytes) can hold or the limit of ${MAX_JSON_BYTES}`);
}

function stringAttrUnchecked(file: string, obj: H5Group, name: string, where: string, fileBytes: number): string | undefined {
  const a = obj.attrs[name];
  if (!a) return undefined;
  checkAttrSize(file, a, `${where}${name}`, fileBytes);
  const v = a.value;
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return strFromU8(v);
  if (Array.isArray(v) && v.length === 1 && typeof v[0] === 'string') return v[0];
  throw err(file, `attribute ${where}${name}: expected a string, got ${show(v)}`);
}

/** A list-of-strings attribute (Keras's load_attributes_from_hdf5_group: `name` or `name0`, `name1`, …). */
function stringListAttr(file: string, obj: H5Group, name: string, where: string, fileBytes: number): string[] | undefined {
  return at(file, `${where}${name}`, () => stringListAttrUnchecked(file, obj, name, where, fileBytes));
}

function stringListAttrUnchecked(file: string, obj: H5Group, name: string, where: string, fileBytes: number): string[] | undefined {
  const one = (key: string): string[] => {
    const a = obj.attrs[key];
    checkAttrSize(file, a, `${where}${key}`, fileBytes);
    const v = a.value;
    if (typeof v === 'string') return [v];
    if (ArrayBuffer.isView(v) && (v as { length: number }).length === 0) return []; // [] is saved as an empty float array
    if (Array.isArray(v) && v.every((s) => typeof s === 'string')) return v as string[];
    throw err(file, `attribute ${where}${key}: expected a list of strings, got ${show(v)}`);
  };
  const keys = Object.keys(obj.attrs);
  if (keys.includes(name)) return one(name);
  if (!keys.includes(`${name}0`)) return undefined;
  const out: string[] = [];
  for (let i = 0; keys.includes(`${name}${i}`); i++) out.push(...one(`${name}${i}`));
  return out;
}

/** Runs an h5wasm call on `path`, turning its errors into KerasFormatErrors naming the file and path. */
function at<T>(file: string, path: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof KerasFormatError) throw e;
    throw err(file, `HDF5 object ${path}: ${(e as Error)?.message ?? String(e)}`);
  }
}

function groupAt(file: string, lib: H5, f: H5File, path: string): H5Group | undefined {
  const g = at(file, path, () => f.get(path));
  return g instanceof lib.Group ? g : undefined;
}

/** A float dataset's shape and values (float64 narrowed to float32), its declared size checked first. */
function readDataset(file: string, lib: H5, f: H5File, path: string, fileBytes: number): KerasWeight {
  return at(file, path, () => readDatasetUnchecked(file, lib, f, path, fileBytes));
}

function readDatasetUnchecked(file: string, lib: H5, f: H5File, path: string, fileBytes: number): KerasWeight {
  const d = f.get(path);
  if (!d) throw err(file, `weight dataset ${path} is missing`);
  if (!(d instanceof lib.Dataset)) throw err(file, `weight ${path} is not a dataset (a ${(d as { type?: string }).type ?? typeof d})`);
  const ds = d as H5Dataset;
  const m = ds.metadata;
  const shape = m.shape ?? [];
  if (m.virtual_sources && m.virtual_sources.length > 0) throw err(file, `weight dataset ${path} is a virtual dataset (reads other files); not supported`);
  if (m.type !== 1 || (m.size !== 4 && m.size !== 8)) {
    throw err(file, `weight dataset ${path}: expected float32 or float64 values, got HDF5 type class ${m.type} of ${m.size} bytes${ds.attrs.dtype ? ` (dtype attribute ${show(ds.attrs.dtype.value)})` : ''}`);
  }
  const count = shape.reduce((a, b) => a * b, 1);
  const bytes = count * m.size;
  const filtered = ds.filters.length > 0;
  const cap = filtered ? Math.min(KERAS_MAX_ENTRY_BYTES, fileBytes * DEFLATE_MAX_RATIO) : fileBytes;
  if (!Number.isSafeInteger(count) || bytes > cap) {
    throw err(file, `weight dataset ${path}: declares shape [${shape.join(', ')}] (${bytes} bytes), more than the file (${fileBytes} bytes${filtered ? ', compressed' : ''}) can hold`);
  }
  const v = ds.value;
  let data: Float32Array;
  if (v instanceof Float32Array) data = v;
  else if (v instanceof Float64Array) data = Float32Array.from(v);
  else if (typeof v === 'number' && count === 1) data = Float32Array.of(v);
  else throw err(file, `weight dataset ${path}: could not be read as floats (got ${show(v)})`);
  if (data.length !== count) throw err(file, `weight dataset ${path}: holds ${data.length} values, its shape [${shape.join(', ')}] says ${count}`);
  return { name: path, shape: [...shape], data };
}

// ---------------------------------------------------------------------------------------------
// The .keras layout

/** keras/src/utils/naming.py to_snake_case. */
function toSnakeCase(name: string): string {
  return name.replace(/\W+/g, '').replace(/(.)([A-Z][a-z]+)/g, '$1_$2').replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase();
}

/** The weights-file paths of a Sequential's layers, as `_save_container_state` names them. */
function containerPaths(classNames: readonly string[], root = 'layers'): string[] {
  const used = new Map<string, number>();
  return classNames.map((cls) => {
    let name = toSnakeCase(cls);
    const n = used.get(name);
    if (n === undefined) used.set(name, 0);
    else {
      used.set(name, n + 1);
      name = `${name}_${n + 1}`;
    }
    return `${root}/${name}`;
  });
}

/** The `vars` groups of one layer in get_weights() order, relative to its path. */
function varGroups(cls: string): string[] {
  switch (cls) {
    case 'SimpleRNN': case 'LSTM': case 'GRU': return ['cell/vars'];
    case 'Bidirectional': return ['forward_layer/cell/vars', 'backward_layer/cell/vars'];
    case 'TimeDistributed': return ['layer/vars'];
    default: return ['vars'];
  }
}

/** Every `vars` group Keras writes for one layer (with the empty ones of the wrappers). */
function allVarGroups(cls: string): string[] {
  switch (cls) {
    case 'SimpleRNN': case 'LSTM': case 'GRU': return ['vars', 'cell/vars'];
    case 'Bidirectional': return ['vars', 'forward_layer/vars', 'forward_layer/cell/vars', 'backward_layer/vars', 'backward_layer/cell/vars'];
    case 'TimeDistributed': return ['vars', 'layer/vars'];
    default: return ['vars'];
  }
}

/** The dataset paths of one `vars` group, "0", "1", … in order (they must be exactly those names). */
function varsDatasets(file: string, lib: H5, f: H5File, groupPath: string): string[] {
  const g = groupAt(file, lib, f, groupPath);
  if (!g) throw err(file, `weights group ${groupPath} is missing`);
  const keys = at(file, groupPath, () => g.keys());
  const idx = keys.map((k) => (/^(0|[1-9]\d{0,5})$/.test(k) ? Number(k) : NaN));
  if (idx.some((i) => Number.isNaN(i))) throw err(file, `weights group ${groupPath} holds ${JSON.stringify(keys.slice(0, 8))}; expected datasets named 0, 1, …`);
  const sorted = [...idx].sort((a, b) => a - b);
  if (sorted.some((i, k) => i !== k)) throw err(file, `weights group ${groupPath} holds ${JSON.stringify(keys.slice(0, 8))}; expected datasets 0 … ${keys.length - 1}`);
  return sorted.map((i) => `${groupPath}/${i}`);
}

interface ConfigLayer { name: string; className: string }

/** The layers of a model config (without InputLayer), for naming paths; loose: modelFromKeras checks the rest. */
function configLayers(file: string, config: unknown): ConfigLayer[] {
  let top = config;
  if (isObj(top) && isObj(top.model_config)) top = top.model_config;
  const cfg = isObj(top) ? top.config : undefined;
  const layers = Array.isArray(cfg) ? cfg : isObj(cfg) ? cfg.layers : undefined;
  if (!Array.isArray(layers)) throw err(file, `the model config has no layer list (config.layers), got ${show(layers)}`);
  const out: ConfigLayer[] = [];
  layers.forEach((l, i) => {
    const cls = isObj(l) ? l.class_name : undefined;
    if (typeof cls !== 'string') throw err(file, `model config layer ${i}: 'class_name' must be a string, got ${show(cls)}`);
    if (cls === 'InputLayer') return;
    const c = isObj(l) && isObj(l.config) ? l.config : {};
    out.push({ name: typeof c.name === 'string' ? c.name : `config.layers[${i}]`, className: cls });
  });
  return out;
}

function flavourOf(version: string | null): KerasFlavour {
  return version !== null && /^[12]\./.test(version) ? 'keras2' : 'keras3';
}

/** Reads a .keras archive: config, Keras version and a reader of each layer's weights. */
async function readKeras3<T>(file: string, bytes: Uint8Array, body: (a: { config: unknown; version: string | null; layers: ConfigLayer[]; paths: string[]; f: H5File; lib: H5; h5Bytes: number }) => T): Promise<T> {
  const entries = unzipChecked(file, bytes, [CONFIG, METADATA, WEIGHTS]);
  if (!entries[CONFIG]) throw err(file, `the archive has no ${CONFIG} (a .keras file is a zip of ${CONFIG}, ${METADATA} and ${WEIGHTS})`);
  const config = parseJson(file, CONFIG, strFromU8(entries[CONFIG]));
  let version: string | null = null;
  if (entries[METADATA]) {
    const meta = parseJson(file, METADATA, strFromU8(entries[METADATA]));
    if (isObj(meta) && typeof meta.keras_version === 'string') version = meta.keras_version;
  }
  const layers = configLayers(`${file}: ${CONFIG}`, config);
  const w = entries[WEIGHTS];
  if (!w) throw err(file, `the archive has no ${WEIGHTS} (weights saved as npz or missing); rnnkit reads the h5 weights format`);
  const dir = await fs.promises.mkdtemp(nodePath.join(os.tmpdir(), 'rnnkit-keras-'));
  const tmp = nodePath.join(dir, WEIGHTS);
  try {
    await fs.promises.writeFile(tmp, w);
    return await withH5(`${file}: ${WEIGHTS}`, tmp, w, (f, lib) => {
      const wf = `${file}: ${WEIGHTS}`;
      const root = groupAt(wf, lib, f, 'layers') || !groupAt(wf, lib, f, '_layer_checkpoint_dependencies') ? 'layers' : '_layer_checkpoint_dependencies';
      return body({ config, version, layers, paths: containerPaths(layers.map((l) => l.className), root), f, lib, h5Bytes: w.length });
    });
  } finally {
    await fs.promises.rm(dir, { recursive: true, force: true });
  }
}

/** Reads a legacy .h5 file: model_config, Keras version, and the open file. */
async function readLegacyH5<T>(file: string, bytes: Uint8Array, body: (a: { config: unknown; version: string | null; layers: ConfigLayer[]; f: H5File; lib: H5 }) => T): Promise<T> {
  return withH5(file, nodePath.resolve(file), bytes, (f, lib) => {
    const text = stringAttr(file, f, 'model_config', '', bytes.length);
    if (text === undefined) {
      throw err(file, `no model_config attribute: a weights-only file (save_weights) or not a Keras model; rnnkit needs the model's config (save with model.save("model.keras") or model.save("model.h5"))`);
    }
    const config = parseJson(file, 'attribute model_config', text);
    const version = stringAttr(file, f, 'keras_version', '', bytes.length) ?? null;
    const layers = configLayers(`${file}: model_config`, config);
    if (!groupAt(file, lib, f, 'model_weights')) throw err(file, 'no model_weights group (the weights of the layers)');
    return body({ config, version, layers, f, lib });
  });
}

/** Weight datasets of one legacy-h5 layer, in weight_names order. */
function legacyWeightPaths(file: string, lib: H5, f: H5File, layerName: string, fileBytes: number): string[] {
  const gp = `model_weights/${layerName}`;
  const g = groupAt(file, lib, f, gp);
  if (!g) throw err(file, `weights group ${gp} is missing`);
  const names = stringListAttr(file, g, 'weight_names', `${gp}/`, fileBytes);
  if (names === undefined) throw err(file, `weights group ${gp} has no weight_names attribute`);
  return names.map((n) => `${gp}/${n}`);
}

async function readAny<T>(path: string, what: string, k3: (bytes: Uint8Array) => Promise<T>, h: (bytes: Uint8Array) => Promise<T>): Promise<T> {
  const bytes = await readBytes(path, what);
  if (startsWith(bytes, ZIP_MAGIC) || (bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b)) return k3(bytes);
  if (isHdf5(bytes)) return h(bytes);
  throw err(path, 'neither a Keras 3 .keras file (a zip archive) nor a legacy Keras .h5 file (HDF5)');
}

// ---------------------------------------------------------------------------------------------
// Public API

/**
 * Loads a Keras model file into an rnnkit Sequential: a Keras 3 `.keras` archive (config.json +
 * model.weights.h5) or a legacy `.h5` file (model_config + model_weights), told apart by their
 * bytes, not the extension. Layers: Embedding, SimpleRNN, LSTM, GRU (reset_after true or false),
 * Bidirectional (every merge mode but None), Dense, TimeDistributed(Dense), Dropout, Masking,
 * RepeatVector, Activation (see modelFromKeras in keras.ts). Keras 2's and Keras 3's defaults and
 * hard_sigmoid are picked by the file's keras_version.
 *
 * Errors: node's fs errors (ENOENT, …) for a file that cannot be read; TypeError for a bad path;
 * KerasFormatError naming the file and the entry/dataset for the rest: not a zip or HDF5 file, a
 * truncated or corrupt archive, an entry declaring a size beyond KERAS_MAX_ENTRY_BYTES or beyond what the
 * archive can hold, no config.json / model_config, config not JSON, a missing weights group or
 * dataset, a dataset of the wrong shape or type, an unknown layer class or unsupported option.
 */
export async function loadKerasFile(path: string): Promise<Sequential> {
  return readAny(path, 'loadKerasFile',
    (bytes) => readKeras3(path, bytes, ({ config, version, layers, paths, f, lib, h5Bytes }) => {
      const file = `${path}: ${WEIGHTS}`;
      return modelFromKeras(config, (name, index) => {
        const l = layers[index];
        if (!l || l.name !== name) throw err(path, `layer ${name} (index ${index}) does not match config.json's layer ${l ? l.name : 'list'}`);
        return varGroups(l.className).flatMap((g) => varsDatasets(file, lib, f, `${paths[index]}/${g}`)).map((p) => readDataset(file, lib, f, p, h5Bytes));
      }, { flavour: flavourOf(version), where: path });
    }),
    (bytes) => readLegacyH5(path, bytes, ({ config, version, layers, f, lib }) => {
      const listed = stringListAttr(path, groupAt(path, lib, f, 'model_weights')!, 'layer_names', 'model_weights/', bytes.length);
      return modelFromKeras(config, (name) => {
        if (listed && !listed.includes(name)) throw err(path, `layer ${name} is not in model_weights/layer_names ${show(listed)}`);
        if (!layers.some((l) => l.name === name)) throw err(path, `layer ${name} is not in model_config`);
        return legacyWeightPaths(path, lib, f, name, bytes.length).map((p) => readDataset(path, lib, f, p, bytes.length));
      }, { flavour: flavourOf(version), where: path });
    }));
}

/**
 * What a Keras model file holds, without building a model (for `rnnkit inspect`): the format
 * ('keras3' for .keras, 'keras-h5' for legacy .h5), the Keras version that wrote it, and each layer
 * (name, class) with the path and shape of each weight dataset in get_weights() order. Layers of
 * classes rnnkit does not load are listed too (their datasets found by walking their group).
 * Errors: as loadKerasFile's for the file structure (not for unsupported layers).
 */
export async function describeKerasFile(path: string): Promise<KerasFileDescription> {
  return readAny<KerasFileDescription>(path, 'describeKerasFile',
    (bytes) => readKeras3(path, bytes, ({ version, layers, paths, f, lib }) => {
      const file = `${path}: ${WEIGHTS}`;
      return {
        format: 'keras3' as const, kerasVersion: version,
        layers: layers.map((l, i) => {
          const known = ['SimpleRNN', 'LSTM', 'GRU', 'Bidirectional', 'TimeDistributed'].includes(l.className) || !groupAt(file, lib, f, paths[i]);
          const dsPaths = known ? varGroups(l.className).flatMap((g) => varsDatasets(file, lib, f, `${paths[i]}/${g}`)) : walkDatasets(file, lib, f, paths[i]);
          return { name: l.name, className: l.className, weights: dsPaths.map((p) => ({ path: p, shape: datasetShape(file, lib, f, p) })) };
        }),
      };
    }),
    (bytes) => readLegacyH5(path, bytes, ({ version, layers, f, lib }) => ({
      format: 'keras-h5' as const, kerasVersion: version,
      layers: layers.map((l) => ({
        name: l.name, className: l.className,
        weights: legacyWeightPaths(path, lib, f, l.name, bytes.length).map((p) => ({ path: p, shape: datasetShape(path, lib, f, p) })),
      })),
    })));
}

function datasetShape(file: string, lib: H5, f: H5File, path: string): number[] {
  const d = at(file, path, () => f.get(path));
  if (!(d instanceof lib.Dataset)) throw err(file, `weight dataset ${path} is missing`);
  return [...((d as H5Dataset).shape ?? [])];
}

/** Every dataset under a group, `vars/0..n` groups first then sub-groups in name order. */
function walkDatasets(file: string, lib: H5, f: H5File, path: string, depth = 0): string[] {
  const g = groupAt(file, lib, f, path);
  if (!g || depth > 16) return [];
  const keys = at(file, path, () => g.keys());
  const out: string[] = [];
  if (keys.includes('vars')) {
    const v = groupAt(file, lib, f, `${path}/vars`);
    if (v) out.push(...at(file, `${path}/vars`, () => v.keys()).filter((k) => /^\d+$/.test(k)).sort((a, b) => Number(a) - Number(b)).map((k) => `${path}/vars/${k}`));
  }
  for (const k of keys.filter((k) => k !== 'vars').sort()) {
    const p = `${path}/${k}`;
    if (at(file, p, () => f.get(p)) instanceof lib.Dataset) out.push(p);
    else out.push(...walkDatasets(file, lib, f, p, depth + 1));
  }
  return out;
}

/** Options of saveKerasFile. */
export interface SaveKerasOptions {
  /**
   * 'keras3': a Keras 3 `.keras` archive; 'keras-h5': a legacy Keras 2 (tf.keras 2.x) `.h5` file.
   * Default: 'keras-h5' when the path ends in `.h5` or `.hdf5` (any case), else 'keras3'.
   */
  format?: 'keras3' | 'keras-h5';
}

/**
 * Writes an rnnkit Sequential (built) as a Keras model file: by default (see SaveKerasOptions.format)
 * a legacy Keras 2 `.h5` file (see saveLegacyH5 below) for a path ending in `.h5`/`.hdf5`, else a Keras 3 `.keras`
 * file that `keras.saving.load_model` reads (Keras requires the `.keras` extension): config.json and
 * weights from modelToKeras(model, 'keras3'), metadata.json, and model.weights.h5 with the group
 * layout above (`vars` at the root, `layers/<snake class name>[_k]/vars`, `…/cell/vars` for RNN
 * layers, `forward_layer`/`backward_layer` for Bidirectional, `layer/vars` for TimeDistributed). The
 * zip's entries are stored uncompressed, as Keras writes them. The file is replaced atomically
 * (writeFileAtomic).
 * Errors: UnsupportedFeatureError (from modelToKeras) for what Keras cannot express (nothing is
 * written then); TypeError for a model that is not built, a bad path or an unknown option/format.
 */
export async function saveKerasFile(model: Sequential, path: string, options: SaveKerasOptions = {}): Promise<void> {
  checkOptions(options, 'saveKerasFile options', ['format']);
  const format = options.format ?? (typeof path === 'string' && /\.(h5|hdf5)$/i.test(path) ? 'keras-h5' : 'keras3');
  if (format !== 'keras3' && format !== 'keras-h5') throw new TypeError(`saveKerasFile options.format: expected 'keras3' or 'keras-h5', got ${show(format)}`);
  if (format === 'keras-h5') return saveLegacyH5(model, path);
  if (typeof path !== 'string' || path.length === 0) throw new TypeError(`saveKerasFile: path must be a non-empty string, got ${show(path)}`);
  if (!(model instanceof Sequential)) throw new TypeError(`saveKerasFile: expected a Sequential, got ${show(model)}`);
  const { modelConfig, layers } = modelToKeras(model, 'keras3');
  const paths = containerPaths(layers.map((l) => l.className));
  const lib = await h5();
  const dir = await fs.promises.mkdtemp(nodePath.join(os.tmpdir(), 'rnnkit-keras-'));
  const tmp = nodePath.join(dir, WEIGHTS);
  try {
    const f = new lib.File(tmp, 'w');
    if (typeof f.file_id !== 'bigint' || f.file_id < 0n) throw new Error(`saveKerasFile: h5wasm could not create ${tmp}`);
    try {
      const groups = new Map<string, H5Group>([['', f]]);
      const group = (p: string): H5Group => {
        const have = groups.get(p);
        if (have) return have;
        const cut = p.lastIndexOf('/');
        const g = group(cut < 0 ? '' : p.slice(0, cut)).create_group(cut < 0 ? p : p.slice(cut + 1));
        groups.set(p, g);
        return g;
      };
      group('vars');
      layers.forEach((l, i) => {
        for (const g of allVarGroups(l.className)) group(`${paths[i]}/${g}`);
        const targets = varGroups(l.className);
        const per = l.weights.length / targets.length;
        if (!Number.isInteger(per)) throw new Error(`saveKerasFile: layer ${l.name} (${l.className}) has ${l.weights.length} weights for ${targets.length} weight groups`);
        targets.forEach((t, k) => {
          l.weights.slice(k * per, (k + 1) * per).forEach((w, j) => {
            group(`${paths[i]}/${t}`).create_dataset({ name: String(j), data: w.data, shape: w.shape, dtype: '<f' });
          });
        });
      });
    } finally {
      f.close();
    }
    const weights = new Uint8Array(await fs.promises.readFile(tmp));
    const now = new Date();
    const pad = (n: number) => String(n).padStart(2, '0');
    const dateSaved = `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}@${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())}`;
    const zip = zipSync({
      [METADATA]: [strToU8(JSON.stringify({ keras_version: KERAS3_VERSION_WRITTEN, date_saved: dateSaved })), { level: 0 }],
      [CONFIG]: [strToU8(JSON.stringify(modelConfig)), { level: 0 }],
      [WEIGHTS]: [weights, { level: 0 }],
    });
    await writeFileAtomic(path, zip);
  } finally {
    await fs.promises.rm(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Writing legacy .h5

/** The keras_version a legacy .h5 file is written with (tf.keras 2.15, the last Keras 2). */
const KERAS2_H5_VERSION = '2.15.0';
/** keras/src/legacy/saving/legacy_h5_format.py HDF5_OBJECT_HEADER_LIMIT: an attribute above it is split into `<name>0`, `<name>1`, … */
const HDF5_OBJECT_HEADER_LIMIT = 64512;

/**
 * tf.keras 2.x's Variable.name of a weight modelToKeras(…, 'keras2') names `prefix/…/key`: with the
 * ':0' suffix, and for TimeDistributed without the inner Dense's name (tf.keras builds the inner
 * layer inside the wrapper's name scope: 'time_distributed/kernel:0').
 */
function keras2VariableName(className: string, layerName: string, name: string): string {
  let n = name;
  if (className === 'TimeDistributed') n = `${layerName}/${name.slice(name.lastIndexOf('/') + 1)}`;
  return /:\d+$/.test(n) ? n : `${n}:0`;
}

/**
 * Writes a list of strings as h5py writes `np.asarray([b'…', …])` (fixed-length byte strings as long
 * as the longest; an empty list as an empty float64 array), split into `<name>0`, `<name>1`, … when
 * larger than HDF5_OBJECT_HEADER_LIMIT (legacy_h5_format.save_attributes_to_hdf5_group).
 */
function writeStringListAttr(g: H5Group, name: string, values: string[]): void {
  if (values.length === 0) {
    g.create_attribute(name, new Float64Array(0), [0], '<d');
    return;
  }
  const bytes = values.map((v) => strToU8(v));
  for (const b of bytes) if (b.length > HDF5_OBJECT_HEADER_LIMIT) throw new RangeError(`saveKerasFile: the name ${show(strFromU8(b).slice(0, 80))}… is longer than HDF5's attribute limit of ${HDF5_OBJECT_HEADER_LIMIT} bytes`);
  const width = Math.max(1, ...bytes.map((b) => b.length));
  let chunks = 1;
  while (Math.ceil(values.length / chunks) * width > HDF5_OBJECT_HEADER_LIMIT) chunks++;
  const write = (key: string, part: string[]) => g.create_attribute(key, part, [part.length], `A${width}`);
  if (chunks === 1) return write(name, values);
  // numpy.array_split: the first (n % chunks) parts get one more element
  const base = Math.floor(values.length / chunks), extra = values.length % chunks;
  for (let i = 0, at = 0; i < chunks; i++) {
    const n = base + (i < extra ? 1 : 0);
    write(`${name}${i}`, values.slice(at, at + n));
    at += n;
  }
}

/**
 * saveKerasFile's legacy writer (format 'keras-h5'): an rnnkit Sequential (built) as a legacy Keras
 * `.h5` file, the format tf.keras 2.x's
 * `model.save("model.h5")` writes (keras/src/legacy/saving/legacy_h5_format.py `save_model_to_hdf5`
 * and `save_weights_to_hdf5_group`), which `tf.keras.models.load_model` and Keras 3's legacy loader
 * read: root attributes `model_config` (the JSON of {class_name: 'Sequential', config} from
 * modelToKeras(model, 'keras2'), Keras 2 spelling), `keras_version` ('2.15.0') and `backend`
 * ('tensorflow'); a group `model_weights` with attributes `layer_names` (every layer, in order),
 * `backend` and `keras_version`; one group per layer (created in layer-name order, as Keras does)
 * with attribute `weight_names` (e.g. 'lstm/lstm_cell/kernel:0', … in get_weights() order) and a
 * float32 dataset at each of those paths inside the group. No optimizer or training config is written.
 * The file is replaced atomically: h5wasm writes it in a private temp directory, then its bytes are
 * written next to `path` and renamed over it (writeFileAtomic); nothing is written on an error.
 * Errors: UnsupportedFeatureError (from modelToKeras) naming what Keras cannot express (peepholes,
 * projSize, …); TypeError for a model that is not built or a bad path.
 */
async function saveLegacyH5(model: Sequential, path: string): Promise<void> {
  if (typeof path !== 'string' || path.length === 0) throw new TypeError(`saveKerasFile: path must be a non-empty string, got ${show(path)}`);
  if (!(model instanceof Sequential)) throw new TypeError(`saveKerasFile: expected a Sequential, got ${show(model)}`);
  const { modelConfig, layers } = modelToKeras(model, 'keras2');
  // the model_config attribute is {class_name, config} (saving_utils.model_metadata); version and backend are attributes of their own
  const config = { class_name: modelConfig.class_name, config: modelConfig.config };
  const seen = new Set<string>();
  for (const l of layers) {
    if (seen.has(l.name)) throw new Error(`saveKerasFile: two layers named ${l.name}`);
    seen.add(l.name);
  }
  const lib = await h5();
  const dir = await fs.promises.mkdtemp(nodePath.join(os.tmpdir(), 'rnnkit-keras-h5-'));
  const tmp = nodePath.join(dir, 'model.h5');
  try {
    const f = new lib.File(tmp, 'w');
    if (typeof f.file_id !== 'bigint' || f.file_id < 0n) throw new Error(`saveKerasFile: h5wasm could not create ${tmp}`);
    try {
      f.create_attribute('model_config', JSON.stringify(config));
      f.create_attribute('keras_version', KERAS2_H5_VERSION);
      f.create_attribute('backend', 'tensorflow');
      const mw = f.create_group('model_weights');
      writeStringListAttr(mw, 'layer_names', layers.map((l) => l.name));
      mw.create_attribute('backend', 'tensorflow');
      mw.create_attribute('keras_version', KERAS2_H5_VERSION);
      for (const l of [...layers].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
        const g = mw.create_group(l.name);
        const names = l.weights.map((w) => keras2VariableName(l.className, l.name, w.name));
        writeStringListAttr(g, 'weight_names', names);
        const groups = new Map<string, H5Group>([['', g]]);
        const group = (p: string): H5Group => {
          const have = groups.get(p);
          if (have) return have;
          const cut = p.lastIndexOf('/');
          const made = group(cut < 0 ? '' : p.slice(0, cut)).create_group(cut < 0 ? p : p.slice(cut + 1));
          groups.set(p, made);
          return made;
        };
        l.weights.forEach((w, j) => {
          const n = names[j];
          const cut = n.lastIndexOf('/');
          group(cut < 0 ? '' : n.slice(0, cut)).create_dataset({ name: n.slice(cut + 1), data: w.data, shape: w.shape, dtype: '<f' });
        });
      }
    } finally {
      f.close();
    }
    await writeFileAtomic(path, new Uint8Array(await fs.promises.readFile(tmp)));
  } finally {
    await fs.promises.rm(dir, { recursive: true, force: true });
  }
}
