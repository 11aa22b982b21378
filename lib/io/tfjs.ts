// TensorFlow.js LayersModel files ↔ rnnkit Sequential models: the directory tfjs-node's
// model.save('file://dir') writes (and @tensorflow/tfjs writes through tf.io.withSaveHandler):
//
//   model.json   {modelTopology, format: 'layers-model', generatedBy, convertedBy,
//                 weightsManifest: [{paths: ['weights.bin'] or ['group1-shard1of2.bin', …],
//                                    weights: [{name, shape, dtype, quantization?}]}]}
//   *.bin        the weights, little-endian, in manifest order; the shards of all groups concatenated
//                in order are one buffer
//
// The layer configurations and weights are interpreted by ./keras.ts (flavour 'tfjs': gates default
// to hardSigmoid, a GRU to reset-before); every layout conversion is lib/io/layouts.ts's.
import { readFile, stat, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { show } from '../options.js';
import { Sequential } from '../model/sequential.js';
import { writeFileAtomic } from './files.js';
import { modelFromKeras, modelToKeras, type KerasWeight } from './keras.js';

/** A malformed tfjs model (model.json, its manifest or a shard): names the file, the entry and what was expected. */
export class TfjsFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TfjsFormatError';
  }
}

/** One entry of a weights manifest (tf.io.WeightsManifestEntry). */
export interface TfjsWeightSpec {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: string; scale?: number; min?: number };
  group?: string;
}

/** The in-memory form (tf.io.ModelArtifacts): what a tfjs IOHandler's load() returns and save() receives. */
export interface TfjsArtifacts {
  modelTopology: unknown;
  weightSpecs?: TfjsWeightSpec[];
  /** One ArrayBuffer, or several to be concatenated (tfjs ≥ 4.10's WeightData). */
  weightData?: ArrayBuffer | ArrayBuffer[];
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Bytes per element stored for a spec, or a TfjsFormatError naming the unsupported dtype. */
function storedBytes(spec: TfjsWeightSpec, where: string): 1 | 2 | 4 {
  if (spec.quantization !== undefined) {
    const q = spec.quantization;
    if (!isObj(q)) throw new TfjsFormatError(`${where}: weight ${spec.name}: 'quantization' must be an object, got ${show(q)}`);
    if (spec.dtype !== 'float32') throw new TfjsFormatError(`${where}: weight ${spec.name}: quantized weights of dtype ${show(spec.dtype)} are not supported (float32 only)`);
    if (q.dtype === 'uint8' || q.dtype === 'uint16') {
      if (typeof q.scale !== 'number' || !Number.isFinite(q.scale) || typeof q.min !== 'number' || !Number.isFinite(q.min)) {
        throw new TfjsFormatError(`${where}: weight ${spec.name}: ${q.dtype} quantization needs finite 'scale' and 'min', got ${show(q.scale)}, ${show(q.min)}`);
      }
      return q.dtype === 'uint8' ? 1 : 2;
    }
    if (q.dtype === 'float16') return 2;
    throw new TfjsFormatError(`${where}: weight ${spec.name}: quantization dtype ${show(q.dtype)} is not supported (uint8, uint16, float16)`);
  }
  if (spec.dtype === 'float32') return 4;
  throw new TfjsFormatError(`${where}: weight ${spec.name}: dtype ${show(spec.dtype)} is not supported (float32, or float32 quantized as uint8/uint16/float16)`);
}

/** float16 bits → number. */
function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** Checks the specs (names, shapes, dtypes) and returns each one's element count and stored bytes. */
function checkSpecs(specs: unknown, where: string): { spec: TfjsWeightSpec; count: number; bytes: number }[] {
  if (!Array.isArray(specs)) throw new TfjsFormatError(`${where}: the weight specs must be an array, got ${show(specs)}`);
  const seen = new Set<string>();
  return specs.map((s: unknown, i) => {
    if (!isObj(s) || typeof s.name !== 'string') throw new TfjsFormatError(`${where}: weights[${i}]: expected {name, shape, dtype}, got ${show(s)}`);
    const spec = s as unknown as TfjsWeightSpec;
    if (seen.has(spec.name)) throw new TfjsFormatError(`${where}: weight ${spec.name} is declared twice`);
    seen.add(spec.name);
    if (!Array.isArray(spec.shape) || !spec.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new TfjsFormatError(`${where}: weight ${spec.name}: 'shape' must be an array of non-negative integers, got ${show(spec.shape)}`);
    }
    let count = 1;
    for (const d of spec.shape) {
      count *= d;
      if (!Number.isSafeInteger(count)) throw new TfjsFormatError(`${where}: weight ${spec.name}: shape [${spec.shape.join(', ')}] has more elements than can be addressed`);
    }
    const bytes = count * storedBytes(spec, where);
    if (!Number.isSafeInteger(bytes)) throw new TfjsFormatError(`${where}: weight ${spec.name}: shape [${spec.shape.join(', ')}] declares more bytes than can be addressed`);
    return { spec, count, bytes };
  });
}

/** The float32 values of every weight, read from `data` (exactly the declared bytes, checked first). */
function decodeWeights(specs: unknown, data: Uint8Array, where: string): KerasWeight[] {
  const checked = checkSpecs(specs, where);
  const declared = checked.reduce((a, c) => a + c.bytes, 0);
  if (declared !== data.byteLength) {
    throw new TfjsFormatError(`${where}: the manifest declares ${declared} bytes of weights (${checked.length} weights), the weight data has ${data.byteLength}`);
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let off = 0;
  return checked.map(({ spec, count, bytes }) => {
    const out = new Float32Array(count);
    const q = spec.quantization;
    if (!q) for (let k = 0; k < count; k++) out[k] = view.getFloat32(off + 4 * k, true);
    else if (q.dtype === 'float16') for (let k = 0; k < count; k++) out[k] = halfToFloat(view.getUint16(off + 2 * k, true));
    else if (q.dtype === 'uint8') for (let k = 0; k < count; k++) out[k] = q.min! + q.scale! * view.getUint8(off + k);
    else for (let k = 0; k < count; k++) out[k] = q.min! + q.scale! * view.getUint16(off + 2 * k, true);
    off += bytes;
    return { name: spec.name, shape: [...spec.shape], data: out };
  });
}

/** A Sequential from a topology and decoded weights, matching weights to layers by their name's first path component. */
function build(topology: unknown, weights: KerasWeight[], where: string): Sequential {
  const byLayer = new Map<string, KerasWeight[]>();
  for (const w of weights) {
    const layer = w.name.split('/')[0];
    byLayer.set(layer, [...(byLayer.get(layer) ?? []), w]);
  }
  const used = new Set<string>();
  const model = modelFromKeras(topology, (name) => {
    used.add(name);
    const w = byLayer.get(name);
    if (!w) throw new TfjsFormatError(`${where}: layer ${name} has weights but the manifest has none named '${name}/…' (it has ${[...byLayer.keys()].map((k) => `'${k}/…'`).join(', ') || 'none'})`);
    return w;
  }, { flavour: 'tfjs', where });
  const extra = [...byLayer.keys()].filter((k) => !used.has(k));
  if (extra.length > 0) throw new TfjsFormatError(`${where}: the manifest has weights of no layer of the model: ${extra.flatMap((k) => byLayer.get(k)!.map((w) => w.name)).join(', ')}`);
  return model;
}

function concat(parts: readonly (ArrayBuffer | Uint8Array)[]): Uint8Array {
  const views = parts.map((p) => (p instanceof Uint8Array ? p : new Uint8Array(p)));
  if (views.length === 1) return views[0];
  const n = views.reduce((a, v) => a + v.byteLength, 0);
  const out = new Uint8Array(n);
  let off = 0;
  for (const v of views) {
    out.set(v, off);
    off += v.byteLength;
  }
  return out;
}

/**
 * An rnnkit Sequential from in-memory tfjs artifacts (tf.io.ModelArtifacts: modelTopology,
 * weightSpecs, weightData), e.g. what tf.io.withSaveHandler receives from model.save().
 * Errors: TfjsFormatError / KerasFormatError naming the weight or layer and what was expected.
 */
export function tfjsArtifactsToModel(artifacts: TfjsArtifacts, where = 'tfjs artifacts'): Sequential {
  if (!isObj(artifacts)) throw new TfjsFormatError(`${where}: expected {modelTopology, weightSpecs, weightData}, got ${show(artifacts)}`);
  if (artifacts.format !== undefined && artifacts.format !== 'layers-model') {
    throw new TfjsFormatError(`${where}: format ${show(artifacts.format)} is not a tfjs LayersModel ('layers-model'; graph models are not supported)`);
  }
  if (!isObj(artifacts.modelTopology)) throw new TfjsFormatError(`${where}: 'modelTopology' must be an object, got ${show(artifacts.modelTopology)}`);
  const wd = artifacts.weightData;
  const parts = wd === undefined ? [] : Array.isArray(wd) ? wd : [wd];
  if (!parts.every((p: unknown) => p instanceof ArrayBuffer || p instanceof Uint8Array)) throw new TfjsFormatError(`${where}: 'weightData' must be an ArrayBuffer (or an array of them)`);
  const weights = decodeWeights(artifacts.weightSpecs ?? [], concat(parts), where);
  return build(artifacts.modelTopology, weights, where);
}

/**
 * The tfjs artifacts of an rnnkit Sequential (built), for tf.io.fromMemory / an IOHandler:
 * modelTopology (tfjs-layers' spelling), format 'layers-model', weightSpecs and one ArrayBuffer of
 * float32 weights. Errors: UnsupportedFeatureError naming what tfjs cannot express (see modelToKeras;
 * notably a reset-after GRU: make it with resetAfter: false).
 */
export function modelToTfjsArtifacts(model: Sequential): Required<Pick<TfjsArtifacts, 'modelTopology' | 'weightSpecs' | 'format' | 'generatedBy' | 'convertedBy'>> & { weightData: ArrayBuffer } {
  const { modelConfig, layers } = modelToKeras(model, 'tfjs');
  const weights = layers.flatMap((l) => l.weights);
  const n = weights.reduce((a, w) => a + w.data.length, 0);
  const data = new Float32Array(n);
  let off = 0;
  for (const w of weights) {
    data.set(w.data, off);
    off += w.data.length;
  }
  // The manifest is little-endian; so is every platform Node runs on, but be explicit.
  const bytes = new Uint8Array(4 * n);
  const view = new DataView(bytes.buffer);
  for (let k = 0; k < n; k++) view.setFloat32(4 * k, data[k], true);
  return {
    modelTopology: modelConfig,
    format: 'layers-model',
    generatedBy: 'rnnkit',
    convertedBy: null,
    weightSpecs: weights.map((w) => ({ name: w.name, shape: [...w.shape], dtype: 'float32' })),
    weightData: bytes.buffer,
  };
}

/** A shard path from the manifest, resolved inside the model's directory (no absolute paths, no '..'). */
function shardPath(dir: string, p: unknown, where: string): string {
  if (typeof p !== 'string' || p.length === 0) throw new TfjsFormatError(`${where}: a shard path must be a non-empty string, got ${show(p)}`);
  const norm = path.posix.normalize(p.replace(/\\/g, '/'));
  if (path.posix.isAbsolute(norm) || norm.startsWith('../') || norm === '..' || /^[a-z]+:/i.test(p)) {
    throw new TfjsFormatError(`${where}: shard path ${show(p)} must be relative to the model's directory and stay inside it`);
  }
  return path.join(dir, norm);
}

/**
 * Loads a tfjs LayersModel: `p` is a directory holding model.json or the model.json file itself (the
 * format tfjs-node's model.save('file://dir') writes). The shards of every manifest group are
 * concatenated in order; every declared weight size is checked against the shards' real sizes
 * before anything is read or allocated. Weights are float32 (or quantized uint8/uint16/float16,
 * widened); other dtypes are refused by name. Weights are matched to layers by their names
 * ('<layer>/…'), each layer's in manifest order (Keras get_weights() order).
 *
 * Errors: TfjsFormatError naming the file and the entry (bad JSON, a missing or short shard, a
 * declared size beyond the data, an unknown dtype, a path leaving the directory), KerasFormatError
 * for the layers (unknown class, unsupported option, shape mismatch).
 */
export async function loadTfjsModel(p: string): Promise<Sequential> {
  if (typeof p !== 'string' || p.length === 0) throw new TypeError(`loadTfjsModel: expected a path, got ${show(p)}`);
  let file = p;
  let st;
  try {
    st = await stat(p);
  } catch (e) {
    throw new TfjsFormatError(`${p}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (st.isDirectory()) file = path.join(p, 'model.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new TfjsFormatError(`${file}: cannot read model.json (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new TfjsFormatError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (!isObj(json)) throw new TfjsFormatError(`${file}: expected a JSON object {modelTopology, weightsManifest, …}, got ${show(json)}`);
  if (json.format !== undefined && json.format !== 'layers-model') {
    throw new TfjsFormatError(`${file}: format ${show(json.format)} is not a tfjs LayersModel ('layers-model')`);
  }
  if (!isObj(json.modelTopology)) throw new TfjsFormatError(`${file}: 'modelTopology' must be an object, got ${show(json.modelTopology)}`);
  const manifest = json.weightsManifest ?? [];
  if (!Array.isArray(manifest)) throw new TfjsFormatError(`${file}: 'weightsManifest' must be an array of {paths, weights}, got ${show(manifest)}`);
  const dir = path.dirname(file);
  const specs: unknown[] = [];
  const shards: { file: string; size: number }[] = [];
  for (const [g, group] of manifest.entries()) {
    const where = `${file}: weightsManifest[${g}]`;
    if (!isObj(group) || !Array.isArray(group.paths) || !Array.isArray(group.weights)) {
      throw new TfjsFormatError(`${where}: expected {paths: [...], weights: [...]}, got ${show(group)}`);
    }
    for (const sp of group.paths) {
      const f = shardPath(dir, sp, where);
      let s;
      try {
        s = await stat(f);
      } catch (e) {
        throw new TfjsFormatError(`${where}: shard ${show(sp)} (${f}) cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
      }
      if (!s.isFile()) throw new TfjsFormatError(`${where}: shard ${show(sp)} (${f}) is not a file`);
      shards.push({ file: f, size: s.size });
    }
    specs.push(...group.weights);
  }
  // Sizes first: the declared bytes must be exactly the shards' bytes, before reading or allocating.
  const checked = checkSpecs(specs, `${file}: weightsManifest`);
  const declared = checked.reduce((a, c) => a + c.bytes, 0);
  const real = shards.reduce((a, s) => a + s.size, 0);
  if (declared !== real) {
    throw new TfjsFormatError(
      `${file}: the manifest declares ${declared} bytes of weights but the shards (${shards.map((s) => `${path.basename(s.file)}: ${s.size}`).join(', ') || 'none'}) hold ${real}` +
        (declared > real ? ' (a shard is missing or shorter than declared)' : ''),
    );
  }
  const parts: Uint8Array[] = [];
  for (const s of shards) {
    const b = await readFile(s.file);
    if (b.byteLength !== s.size) throw new TfjsFormatError(`${s.file}: changed size while being read (${s.size} → ${b.byteLength} bytes)`);
    parts.push(b);
  }
  const weights = decodeWeights(specs, concat(parts), `${file}: weightsManifest`);
  return build(json.modelTopology, weights, file);
}

/**
 * Writes an rnnkit Sequential (built) as a tfjs LayersModel directory: `dir`/model.json and
 * `dir`/weights.bin, exactly as tfjs-node's model.save('file://dir') does (each written atomically;
 * the directory is created when missing). tf.loadLayersModel reads it (through an IOHandler such as
 * tf.io.fromMemory, or tfjs-node's file://) and predicts rnnkit's outputs.
 * Errors: UnsupportedFeatureError naming what tfjs cannot express (see modelToTfjsArtifacts); file
 * system errors as they are.
 */
export async function saveTfjsModel(model: Sequential, dir: string): Promise<void> {
  if (typeof dir !== 'string' || dir.length === 0) throw new TypeError(`saveTfjsModel: expected a directory path, got ${show(dir)}`);
  const a = modelToTfjsArtifacts(model);
  await mkdir(dir, { recursive: true });
  const json = {
    modelTopology: a.modelTopology,
    format: a.format,
    generatedBy: a.generatedBy,
    convertedBy: a.convertedBy,
    weightsManifest: [{ paths: ['./weights.bin'], weights: a.weightSpecs }],
  };
  await writeFileAtomic(path.join(dir, 'weights.bin'), new Uint8Array(a.weightData));
  await writeFileAtomic(path.join(dir, 'model.json'), JSON.stringify(json));
}
