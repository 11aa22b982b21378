// Every model format rnnkit reads and writes, behind one pair of functions (readModel/writeModel)
// and a detector, for the command line (lib/cli.ts) and for programs that take "a model file".
//
//   format     on disk                                             read  write
//   rnnkit     directory: model.json (rnnkit-model) + model.safetensors  yes   yes
//   tfjs       directory: model.json (layers-model) + weight shards      yes   yes
//   keras      Keras 3 .keras (zip: config.json + model.weights.h5)      yes   yes
//   keras-h5   legacy Keras .h5 (model_config + model_weights)           yes   yes
//   onnx       .onnx (opset 15)                                          yes   yes
//   torch      PyTorch state_dict as .safetensors                        yes   yes
import fs from 'node:fs';
import path from 'node:path';
import { show } from '../options.js';
import { Sequential } from '../model/sequential.js';
import { loadModel } from '../model/persistence.js';
import { loadTfjsModel, saveTfjsModel } from './tfjs.js';
import { loadKerasFile, saveKerasFile } from './keras-files.js';
import { loadOnnx, saveOnnx } from './onnx.js';
import { loadTorchSafetensors, sequentialFromTorch, sequentialFromTorchFile, saveTorchSafetensors, type FromTorchOptions, type TorchKind } from './torch.js';

export type ModelFormat = 'rnnkit' | 'tfjs' | 'keras' | 'keras-h5' | 'onnx' | 'torch';
export const MODEL_FORMATS: readonly ModelFormat[] = ['rnnkit', 'tfjs', 'keras', 'keras-h5', 'onnx', 'torch'];
export const FORMAT_DESCRIPTIONS: Readonly<Record<ModelFormat, string>> = {
  rnnkit: 'rnnkit model directory (model.json + model.safetensors)',
  tfjs: 'TensorFlow.js LayersModel directory (model.json + weight shards)',
  keras: 'Keras 3 .keras file',
  'keras-h5': 'legacy Keras .h5 file',
  onnx: 'ONNX model (.onnx)',
  torch: 'PyTorch state_dict as safetensors (.safetensors)',
};
/** The formats writeModel can write (all of them). */
export const WRITABLE_FORMATS: readonly ModelFormat[] = MODEL_FORMATS;

/** A file or directory that is none of the formats, or a format that cannot do what was asked. */
export class ModelFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelFormatError';
  }
}

const HDF5_MAGIC = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);

function readHead(file: string, n: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(n);
    const got = fs.readSync(fd, b, 0, n, 0);
    return b.subarray(0, got);
  } finally {
    fs.closeSync(fd);
  }
}

function modelJsonKind(file: string): ModelFormat {
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ModelFormatError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  const o = json as Record<string, unknown> | null;
  if (o && typeof o === 'object' && o.format === 'rnnkit-model') return 'rnnkit';
  if (o && typeof o === 'object' && 'modelTopology' in o) return 'tfjs';
  throw new ModelFormatError(`${file}: neither an rnnkit model.json (format 'rnnkit-model') nor a tfjs one (modelTopology)`);
}

/** The format of an existing file or directory (by its content; the extension only for ONNX). */
export function detectFormat(p: string): ModelFormat {
  if (typeof p !== 'string' || p === '') throw new TypeError(`detectFormat: path: expected a file or directory path, got ${show(p)}`);
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch {
    throw new ModelFormatError(`${p}: no such file or directory`);
  }
  if (st.isDirectory()) {
    const mj = path.join(p, 'model.json');
    if (!fs.existsSync(mj)) throw new ModelFormatError(`${p}: a directory without model.json is not a model (rnnkit and tfjs models are directories with a model.json)`);
    return modelJsonKind(mj);
  }
  const head = readHead(p, 16);
  if (head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04) return 'keras';
  if (head.length >= 8 && head.subarray(0, 8).equals(HDF5_MAGIC)) return 'keras-h5';
  if (path.basename(p) === 'model.json') return modelJsonKind(p);
  if (head.length >= 9 && head[8] === 0x7b /* '{' */ && head.readUInt32LE(4) === 0) return 'torch';
  if (p.toLowerCase().endsWith('.onnx')) return 'onnx';
  throw new ModelFormatError(`${p}: unknown model format (expected one of: ${MODEL_FORMATS.map((f) => FORMAT_DESCRIPTIONS[f]).join('; ')})`);
}

/** The format to write `p` in: from `to` when given, else from the extension (a path without one is an rnnkit directory). */
export function outputFormat(p: string, to?: string): ModelFormat {
  if (to !== undefined) {
    if (!MODEL_FORMATS.includes(to as ModelFormat)) throw new ModelFormatError(`unknown format ${show(to)} (known: ${MODEL_FORMATS.join(', ')})`);
    return to as ModelFormat;
  }
  const ext = path.extname(p).toLowerCase();
  switch (ext) {
    case '.onnx': return 'onnx';
    case '.keras': return 'keras';
    case '.safetensors': return 'torch';
    case '.h5': return 'keras-h5';
    case '': return 'rnnkit';
    default: throw new ModelFormatError(`${p}: cannot tell the output format from the extension ${show(ext)}; pass the format (one of ${WRITABLE_FORMATS.join(', ')})`);
  }
}

export interface ReadModelOptions {
  /** The format, when not detected from the file. */
  format?: ModelFormat;
  /**
   * For a PyTorch state_dict that rnnkit did not write: the layers in order, each with its key
   * prefix and kind (e.g. [{ prefix: 'emb.', kind: 'Embedding' }, { prefix: 'lstm.', kind: 'LSTM' }]).
   */
  torchLayers?: FromTorchOptions[];
}

/** Reads a model of any format into an rnnkit Sequential. */
export async function readModel(p: string, options: ReadModelOptions = {}): Promise<{ format: ModelFormat; model: Sequential }> {
  const format = options.format ?? detectFormat(p);
  let model: Sequential;
  switch (format) {
    case 'rnnkit': model = await loadModel(path.basename(p) === 'model.json' ? path.dirname(p) : p, { compile: false }); break;
    case 'tfjs': model = await loadTfjsModel(p); break;
    case 'keras': case 'keras-h5': model = await loadKerasFile(p); break;
    case 'onnx': model = await loadOnnx(p); break;
    case 'torch':
      model = options.torchLayers ? sequentialFromTorch(await loadTorchSafetensors(p), options.torchLayers) : await sequentialFromTorchFile(p);
      break;
    default: throw new ModelFormatError(`unknown format ${show(format)}`);
  }
  return { format, model };
}

/** Writes `model` in `format` (see outputFormat); refused features are UnsupportedFeatureErrors naming them. */
export async function writeModel(model: Sequential, p: string, format: ModelFormat): Promise<void> {
  switch (format) {
    case 'rnnkit': await model.save(p, { includeOptimizer: false }); break;
    case 'tfjs': await saveTfjsModel(model, p); break;
    case 'keras': await saveKerasFile(model, p); break;
    case 'keras-h5': await saveKerasFile(model, p, { format: 'keras-h5' }); break;
    case 'onnx': await saveOnnx(model, p); break;
    case 'torch': await saveTorchSafetensors(model, p); break;
    default: throw new ModelFormatError(`rnnkit cannot write ${FORMAT_DESCRIPTIONS[format] ?? show(format)}`);
  }
}

const TORCH_KINDS: readonly TorchKind[] = ['RNN', 'LSTM', 'GRU', 'RNNCell', 'LSTMCell', 'GRUCell', 'Linear', 'Embedding'];

/**
 * Parses the command line's description of a PyTorch model's layers: "emb.:Embedding,lstm.:LSTM,fc.:Linear"
 * (prefix:kind pairs in order; RNN takes :relu for nonlinearity relu, e.g. "rnn.:RNN:relu").
 */
export function parseTorchLayers(spec: string): FromTorchOptions[] {
  if (typeof spec !== 'string' || spec.trim() === '') throw new ModelFormatError('--torch-layers: expected prefix:Kind pairs separated by commas, e.g. "emb.:Embedding,lstm.:LSTM,fc.:Linear"');
  return spec.split(',').map((part, i) => {
    const [prefix, kind, extra, ...rest] = part.trim().split(':');
    if (kind === undefined || rest.length > 0 || !TORCH_KINDS.includes(kind as TorchKind)) {
      throw new ModelFormatError(`--torch-layers: entry ${i + 1} ${show(part)}: expected prefix:Kind with Kind one of ${TORCH_KINDS.join(', ')}`);
    }
    if (extra !== undefined && !(kind === 'RNN' || kind === 'RNNCell') || (extra !== undefined && extra !== 'tanh' && extra !== 'relu')) {
      throw new ModelFormatError(`--torch-layers: entry ${i + 1} ${show(part)}: only RNN and RNNCell take a third field, tanh or relu`);
    }
    return { prefix, kind: kind as TorchKind, ...(extra ? { nonlinearity: extra as 'tanh' | 'relu' } : {}) };
  });
}
