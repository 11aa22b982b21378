// Saving and loading models: a directory with model.json (the configuration and how the model was
// compiled, versioned), model.safetensors (the weights, PyTorch nn.Sequential names: '0.weight',
// '1.weight_ih_l0' …) and optionally optimizer.safetensors (its moments and step count).
//
// Every file is written atomically (temp file, fsync, rename) in the order model.safetensors,
// optimizer.safetensors, model.json, and each safetensors file carries the save's id (the weights
// also their configuration) in its metadata: a save killed at any point leaves either the previous
// model, or the new weights with their own configuration (with a warning and a fresh optimizer state
// when the kill came before the optimizer file), never a mix. Loading checks names, shapes, dtypes and sizes of every
// tensor before it changes anything.
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Tensor, formatShape } from '../tensor.js';
import { checkOptions, optionNames, show } from '../options.js';
import { decodeSafetensors, encodeSafetensors, type SafeTensor } from '../io/safetensors.js';
import { writeFileAtomic } from '../io/files.js';
import { optimizerFromConfig, type Optimizer, type OptimizerState } from '../train/optimizers.js';
import { Sequential } from './sequential.js';

export const MODEL_FORMAT = 'rnnkit-model';
export const MODEL_FORMAT_VERSION = 1;

interface ModelJson {
  format: string;
  formatVersion: number;
  saveId: string;
  model: ReturnType<Sequential['getConfig']>;
  compile?: { loss: unknown; metrics: string[]; optimizer: { className: string; config: Record<string, unknown> } };
  files: { weights: string; optimizer?: string };
}

export interface SaveOptions {
  /** Save the optimizer's state too, so fit continues exactly (default true when compiled). */
  includeOptimizer?: boolean;
}
const SAVE_OPTIONS = optionNames<SaveOptions>({ includeOptimizer: true });

export interface LoadOptions {
  /** Compile the model as it was saved (loss, metrics, optimizer and its state); default true. */
  compile?: boolean;
}
const LOAD_OPTIONS = optionNames<LoadOptions>({ compile: true });

/** Writes `model` to directory `dir` (created when missing). */
export async function saveModel(model: Sequential, dir: string, options: SaveOptions = {}): Promise<void> {
  checkOptions(options, 'Sequential.save: options', SAVE_OPTIONS);
  if (typeof dir !== 'string' || dir === '') throw new TypeError(`Sequential.save: dir: expected a directory path, got ${show(dir)}`);
  if (!model.built) throw new TypeError('Sequential.save: the model is not built (fit, predict or build it first)');
  await fs.promises.mkdir(dir, { recursive: true });
  const saveId = randomUUID();
  const compiled = model.compileConfig();
  const includeOptimizer = (options.includeOptimizer ?? true) && compiled !== undefined;
  const json: ModelJson = {
    format: MODEL_FORMAT,
    formatVersion: MODEL_FORMAT_VERSION,
    saveId,
    model: model.getConfig(),
    ...(compiled ? { compile: compiled } : {}),
    files: { weights: 'model.safetensors', ...(includeOptimizer ? { optimizer: 'optimizer.safetensors' } : {}) },
  };
  const params = model.namedParameters();
  const weightTensors: Record<string, SafeTensor> = {};
  for (const [name, t] of Object.entries(params)) weightTensors[name] = { dtype: t.dtype === 'float64' ? 'F64' : 'F32', shape: [...t.shape], data: t.data };
  await writeFileAtomic(path.join(dir, 'model.safetensors'), encodeSafetensors(weightTensors, { 'rnnkit.saveId': saveId, 'rnnkit.model': JSON.stringify(json) }));
  if (includeOptimizer) {
    const opt = model.optimizer!;
    const state = opt.getState(params);
    const tensors: Record<string, SafeTensor> = {};
    for (const [name, slots] of Object.entries(state.slots)) {
      for (const [slot, data] of Object.entries(slots)) tensors[`${name}/${slot}`] = { dtype: 'F64', shape: [...params[name].shape], data };
    }
    const meta = { iterations: state.iterations, learningRate: state.learningRate, extra: state.extra ?? {} };
    await writeFileAtomic(path.join(dir, 'optimizer.safetensors'), encodeSafetensors(tensors, { 'rnnkit.saveId': saveId, 'rnnkit.optimizer': JSON.stringify(meta) }));
  }
  await writeFileAtomic(path.join(dir, 'model.json'), `${JSON.stringify(json, null, 2)}\n`);
}

async function readFile(file: string): Promise<Buffer> {
  try {
    return await fs.promises.readFile(file);
  } catch (err) {
    throw new Error(`${file}: cannot be read (${(err as Error).message})`);
  }
}

function parseModelJson(text: string, file: string): ModelJson {
  let json: ModelJson;
  try {
    json = JSON.parse(text) as ModelJson;
  } catch (err) {
    throw new Error(`${file}: not valid JSON (${(err as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || json.format !== MODEL_FORMAT) throw new Error(`${file}: not an rnnkit model (format ${show((json as { format?: unknown })?.format)})`);
  if (json.formatVersion !== MODEL_FORMAT_VERSION) throw new Error(`${file}: format version ${show(json.formatVersion)} is not supported (this rnnkit reads version ${MODEL_FORMAT_VERSION})`);
  if (typeof json.model !== 'object' || json.model === null) throw new Error(`${file}: has no model configuration`);
  return json;
}

/** The weights of a file checked against the model's parameters (names, shapes, dtypes, finite values); nothing is changed. */
function checkWeights(model: Sequential, tensors: Record<string, SafeTensor>, file: string): Map<string, Tensor> {
  const params = model.namedParameters();
  const extra = Object.keys(tensors).filter((k) => !(k in params));
  if (extra.length) throw new Error(`${file}: tensor ${extra[0]} is not a parameter of the model (it has ${Object.keys(params).join(', ')})`);
  const out = new Map<string, Tensor>();
  for (const [name, p] of Object.entries(params)) {
    const t = tensors[name];
    if (!t) throw new Error(`${file}: tensor ${name} is missing (the model's parameter ${name} ${formatShape(p.shape)})`);
    const want = p.dtype === 'float64' ? 'F64' : 'F32';
    if (t.dtype !== want) throw new Error(`${file}: tensor ${name} has dtype ${t.dtype}, the model's parameter is ${want}`);
    if (t.shape.length !== p.shape.length || t.shape.some((d, i) => d !== p.shape[i])) {
      throw new Error(`${file}: tensor ${name} has shape ${formatShape(t.shape)}, the model's parameter has ${formatShape(p.shape)}`);
    }
    const data = t.data as Float32Array | Float64Array;
    for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) throw new Error(`${file}: tensor ${name} has a non-finite value (${data[i]}) at flat index ${i}`);
    out.set(name, Tensor.from(data, p.shape));
  }
  return out;
}

function applyWeights(model: Sequential, weights: Map<string, Tensor>): void {
  const params = model.namedParameters();
  for (const [name, t] of weights) params[name].data.set(t.data);
  model.markWeightsChanged();
}

/** Reads a model directory's weights file into an existing model of the same architecture (all or nothing). */
export async function loadWeightsInto(model: Sequential, dir: string): Promise<void> {
  const file = path.join(dir, 'model.safetensors');
  const { tensors } = decodeSafetensors(await readFile(file), file);
  applyWeights(model, checkWeights(model, tensors, file));
}

/** A model saved by Sequential.save, with its weights and (unless options.compile is false) its training setup. */
export async function loadModel(dir: string, options: LoadOptions = {}): Promise<Sequential> {
  checkOptions(options, 'loadModel: options', LOAD_OPTIONS);
  if (typeof dir !== 'string' || dir === '') throw new TypeError(`loadModel: dir: expected a directory path, got ${show(dir)}`);
  const jsonFile = path.join(dir, 'model.json');
  let json = parseModelJson((await readFile(jsonFile)).toString('utf8'), jsonFile);
  const weightsFile = path.join(dir, typeof json.files?.weights === 'string' ? path.basename(json.files.weights) : 'model.safetensors');
  const { tensors, metadata } = decodeSafetensors(await readFile(weightsFile), weightsFile);
  if (metadata['rnnkit.saveId'] !== json.saveId && metadata['rnnkit.model']) {
    // A save interrupted between its last two renames: the weights file is complete and describes itself.
    json = parseModelJson(metadata['rnnkit.model'], `${weightsFile} (metadata)`);
  }
  const model = Sequential.fromConfig(json.model);
  const inputShape = json.model.config.inputShape;
  if (!inputShape) throw new Error(`${jsonFile}: the configuration has no inputShape (the model was saved unbuilt)`);
  model.build(inputShape);
  applyWeights(model, checkWeights(model, tensors, weightsFile));
  if ((options.compile ?? true) && json.compile) {
    const optimizer: Optimizer = optimizerFromConfig(json.compile.optimizer);
    model.compile({ optimizer, loss: json.compile.loss as never, metrics: json.compile.metrics as never });
    if (json.files.optimizer) {
      const optFile = path.join(dir, path.basename(json.files.optimizer));
      const decoded = decodeSafetensors(await readFile(optFile), optFile);
      if (decoded.metadata['rnnkit.saveId'] !== json.saveId) {
        // A save killed after its weights were in place but before its optimizer state.
        process.emitWarning(`${optFile} belongs to an earlier save than ${weightsFile} (an interrupted save): the model is loaded with a fresh optimizer state`, { code: 'RNNKIT_STALE_OPTIMIZER_STATE' });
        return model;
      }
      let meta: { iterations: number; learningRate: number; extra?: Record<string, number> };
      try {
        meta = JSON.parse(decoded.metadata['rnnkit.optimizer'] ?? '') as typeof meta;
      } catch {
        throw new Error(`${optFile}: its metadata has no optimizer state (rnnkit.optimizer)`);
      }
      const slots: OptimizerState['slots'] = {};
      for (const [key, t] of Object.entries(decoded.tensors)) {
        const cut = key.lastIndexOf('/');
        if (cut < 0 || t.dtype !== 'F64') throw new Error(`${optFile}: tensor ${key} is not an optimizer slot ('<parameter>/<slot>', F64)`);
        (slots[key.slice(0, cut)] ??= {})[key.slice(cut + 1)] = t.data as Float64Array;
      }
      try {
        optimizer.setState(model.namedParameters(), { iterations: meta.iterations, learningRate: meta.learningRate, slots, ...(meta.extra ? { extra: meta.extra } : {}) });
      } catch (err) {
        throw new Error(`${optFile}: ${(err as Error).message}`);
      }
    }
  }
  return model;
}
