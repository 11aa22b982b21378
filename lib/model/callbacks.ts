// fit's callbacks (Keras's names and defaults): any object with some of the hooks below, plus
// EarlyStopping, ModelCheckpoint, ReduceLROnPlateau, CSVLogger and JSONLogger. Hooks may be async.
import fs from 'node:fs';
import { checkOptions, numberIn, optionNames, show } from '../options.js';
import type { Tensor } from '../tensor.js';
import { writeFileAtomic } from '../io/files.js';

/** Loss and metrics by name ('loss', 'accuracy', 'val_loss', …). */
export type Logs = Record<string, number>;

/** The part of a model that callbacks use. */
export interface CallbackModel {
  stopTraining: boolean;
  namedParameters(): Record<string, Tensor>;
  markWeightsChanged(): void;
  save(dir: string, options?: { includeOptimizer?: boolean }): Promise<void>;
  readonly optimizer: { learningRate: number } | undefined;
}

export interface Callback {
  setModel?(model: CallbackModel): void;
  onTrainBegin?(logs: Logs): void | Promise<void>;
  onTrainEnd?(logs: Logs): void | Promise<void>;
  onEpochBegin?(epoch: number, logs: Logs): void | Promise<void>;
  onEpochEnd?(epoch: number, logs: Logs): void | Promise<void>;
  onBatchEnd?(batch: number, logs: Logs): void | Promise<void>;
}

type Mode = 'auto' | 'min' | 'max';

function monitorMode(mode: unknown, monitor: string, what: string): 'min' | 'max' {
  const m = (mode ?? 'auto') as Mode;
  if (m !== 'auto' && m !== 'min' && m !== 'max') throw new TypeError(`${what}.mode: expected 'auto', 'min' or 'max', got ${show(mode)}`);
  if (m !== 'auto') return m;
  return /acc|accuracy/.test(monitor) ? 'max' : 'min';
}

function monitorName(v: unknown, what: string): string {
  if (v === undefined) return 'val_loss';
  if (typeof v !== 'string' || v === '') throw new TypeError(`${what}.monitor: expected a log name such as 'val_loss', got ${show(v)}`);
  return v;
}

function count(v: unknown, what: string, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new RangeError(`${what}: expected a non-negative integer, got ${show(v)}`);
  return v;
}

/** The monitored value of `logs`, or a clear error when fit does not log it. */
function read(logs: Logs, monitor: string, who: string): number {
  const v = logs[monitor];
  if (v === undefined) {
    throw new TypeError(`${who}: monitor '${monitor}' is not in the logs (${Object.keys(logs).join(', ')}); validation values need validationSplit or validationData`);
  }
  return v;
}

export interface EarlyStoppingOptions {
  /** Log to watch (default 'val_loss'). */
  monitor?: string;
  /** Smallest change that counts as an improvement (default 0). */
  minDelta?: number;
  /** Epochs without improvement before stopping (default 0). */
  patience?: number;
  /** 'min', 'max' or 'auto' (default: max for accuracies, else min). */
  mode?: Mode;
  /** Restore the weights of the best epoch when stopping (default false). */
  restoreBestWeights?: boolean;
}
const EARLY_STOPPING_OPTIONS = optionNames<EarlyStoppingOptions>({ monitor: true, minDelta: true, patience: true, mode: true, restoreBestWeights: true });

/** Stops fit once `monitor` has not improved for `patience` epochs (Keras EarlyStopping). */
export class EarlyStopping implements Callback {
  readonly monitor: string;
  readonly minDelta: number;
  readonly patience: number;
  readonly mode: 'min' | 'max';
  readonly restoreBestWeights: boolean;
  /** The epoch fit stopped after (−1 when it did not stop early). */
  stoppedEpoch = -1;
  bestEpoch = -1;
  best = NaN;
  private wait = 0;
  private model: CallbackModel | undefined;
  private bestWeights: Map<string, Float32Array | Float64Array> | undefined;

  constructor(options: EarlyStoppingOptions = {}) {
    checkOptions(options, 'EarlyStopping: options', EARLY_STOPPING_OPTIONS);
    this.monitor = monitorName(options.monitor, 'EarlyStopping: options');
    this.minDelta = Math.abs(options.minDelta === undefined ? 0 : numberIn(options.minDelta, 'EarlyStopping: options.minDelta', 0, 1e30));
    this.patience = count(options.patience, 'EarlyStopping: options.patience', 0);
    this.mode = monitorMode(options.mode, this.monitor, 'EarlyStopping: options');
    this.restoreBestWeights = options.restoreBestWeights ?? false;
    if (typeof this.restoreBestWeights !== 'boolean') throw new TypeError('EarlyStopping: options.restoreBestWeights: expected a boolean');
  }
  setModel(model: CallbackModel): void {
    this.model = model;
  }
  onTrainBegin(): void {
    this.wait = 0;
    this.best = NaN;
    this.bestEpoch = -1;
    this.stoppedEpoch = -1;
    this.bestWeights = undefined;
  }
  onEpochEnd(epoch: number, logs: Logs): void {
    const v = read(logs, this.monitor, 'EarlyStopping');
    const improved = Number.isNaN(this.best) || (this.mode === 'min' ? v < this.best - this.minDelta : v > this.best + this.minDelta);
    if (improved) {
      this.best = v;
      this.bestEpoch = epoch;
      this.wait = 0;
      if (this.restoreBestWeights && this.model) {
        this.bestWeights = new Map(Object.entries(this.model.namedParameters()).map(([k, t]) => [k, t.data.slice()]));
      }
      return;
    }
    this.wait++;
    if (this.wait > this.patience && this.model) {
      this.stoppedEpoch = epoch;
      this.model.stopTraining = true;
      if (this.bestWeights) {
        for (const [k, t] of Object.entries(this.model.namedParameters())) t.data.set(this.bestWeights.get(k)!);
        this.model.markWeightsChanged();
      }
    }
  }
}

export interface ModelCheckpointOptions {
  /** Directory to save to; '{epoch}' is replaced by the epoch number (1-based). */
  dir: string;
  /** Log to watch with saveBestOnly (default 'val_loss'). */
  monitor?: string;
  /** Save only when `monitor` improves (default false: every epoch). */
  saveBestOnly?: boolean;
  mode?: Mode;
  /** Also save the optimizer state (default true), so training resumes exactly. */
  includeOptimizer?: boolean;
}
const CHECKPOINT_OPTIONS = optionNames<ModelCheckpointOptions>({ dir: true, monitor: true, saveBestOnly: true, mode: true, includeOptimizer: true });

/** Saves the model (model.save, atomic) after each epoch, or when it improves (Keras ModelCheckpoint). */
export class ModelCheckpoint implements Callback {
  readonly dir: string;
  readonly monitor: string;
  readonly saveBestOnly: boolean;
  readonly mode: 'min' | 'max';
  readonly includeOptimizer: boolean;
  best = NaN;
  private model: CallbackModel | undefined;
  constructor(options: ModelCheckpointOptions) {
    checkOptions(options, 'ModelCheckpoint: options', CHECKPOINT_OPTIONS);
    if (typeof options.dir !== 'string' || options.dir === '') throw new TypeError(`ModelCheckpoint: options.dir: expected a directory path, got ${show(options.dir)}`);
    this.dir = options.dir;
    this.monitor = monitorName(options.monitor, 'ModelCheckpoint: options');
    this.saveBestOnly = options.saveBestOnly ?? false;
    this.mode = monitorMode(options.mode, this.monitor, 'ModelCheckpoint: options');
    this.includeOptimizer = options.includeOptimizer ?? true;
  }
  setModel(model: CallbackModel): void {
    this.model = model;
  }
  async onEpochEnd(epoch: number, logs: Logs): Promise<void> {
    if (!this.model) return;
    if (this.saveBestOnly) {
      const v = read(logs, this.monitor, 'ModelCheckpoint');
      const better = Number.isNaN(this.best) || (this.mode === 'min' ? v < this.best : v > this.best);
      if (!better) return;
      this.best = v;
    }
    await this.model.save(this.dir.replace('{epoch}', String(epoch + 1)), { includeOptimizer: this.includeOptimizer });
  }
}

export interface ReduceLROnPlateauOptions {
  monitor?: string;
  /** The learning rate is multiplied by this, in (0, 1) (default 0.1). */
  factor?: number;
  /** Epochs without improvement before reducing (default 10). */
  patience?: number;
  /** Smallest change that counts as an improvement (default 1e-4). */
  minDelta?: number;
  /** Epochs to wait after a reduction (default 0). */
  cooldown?: number;
  /** Lower bound of the learning rate (default 0). */
  minLearningRate?: number;
  mode?: Mode;
}
const PLATEAU_OPTIONS = optionNames<ReduceLROnPlateauOptions>({ monitor: true, factor: true, patience: true, minDelta: true, cooldown: true, minLearningRate: true, mode: true });

/** Lowers the optimizer's learning rate when `monitor` stops improving (Keras ReduceLROnPlateau). */
export class ReduceLROnPlateau implements Callback {
  readonly monitor: string;
  readonly factor: number;
  readonly patience: number;
  readonly minDelta: number;
  readonly cooldown: number;
  readonly minLearningRate: number;
  readonly mode: 'min' | 'max';
  private best = NaN;
  private wait = 0;
  private cooling = 0;
  private model: CallbackModel | undefined;
  constructor(options: ReduceLROnPlateauOptions = {}) {
    checkOptions(options, 'ReduceLROnPlateau: options', PLATEAU_OPTIONS);
    this.monitor = monitorName(options.monitor, 'ReduceLROnPlateau: options');
    this.factor = options.factor === undefined ? 0.1 : numberIn(options.factor, 'ReduceLROnPlateau: options.factor', 1e-12, 1 - 1e-12);
    this.patience = count(options.patience, 'ReduceLROnPlateau: options.patience', 10);
    this.minDelta = options.minDelta === undefined ? 1e-4 : numberIn(options.minDelta, 'ReduceLROnPlateau: options.minDelta', 0, 1e30);
    this.cooldown = count(options.cooldown, 'ReduceLROnPlateau: options.cooldown', 0);
    this.minLearningRate = options.minLearningRate === undefined ? 0 : numberIn(options.minLearningRate, 'ReduceLROnPlateau: options.minLearningRate', 0, 1e30);
    this.mode = monitorMode(options.mode, this.monitor, 'ReduceLROnPlateau: options');
  }
  setModel(model: CallbackModel): void {
    this.model = model;
  }
  onEpochEnd(_epoch: number, logs: Logs): void {
    const v = read(logs, this.monitor, 'ReduceLROnPlateau');
    if (this.cooling > 0) this.cooling--;
    const improved = Number.isNaN(this.best) || (this.mode === 'min' ? v < this.best - this.minDelta : v > this.best + this.minDelta);
    if (improved) {
      this.best = v;
      this.wait = 0;
      return;
    }
    if (this.cooling > 0) return;
    if (++this.wait > this.patience - 1 && this.model?.optimizer) {
      const opt = this.model.optimizer;
      opt.learningRate = Math.max(this.minLearningRate, opt.learningRate * this.factor);
      this.cooling = this.cooldown;
      this.wait = 0;
    }
  }
}

const LOGGER_OPTIONS = optionNames<{ path: string; append?: boolean }>({ path: true, append: true });

/** Appends one CSV row per epoch (epoch, then every log) to `path`; the header is written first. */
export class CSVLogger implements Callback {
  readonly path: string;
  readonly append: boolean;
  private keys: string[] | undefined;
  constructor(options: { path: string; append?: boolean }) {
    checkOptions(options, 'CSVLogger: options', LOGGER_OPTIONS);
    if (typeof options.path !== 'string' || options.path === '') throw new TypeError(`CSVLogger: options.path: expected a file path, got ${show(options.path)}`);
    this.path = options.path;
    this.append = options.append ?? false;
  }
  onTrainBegin(): void {
    this.keys = undefined;
    if (!this.append) fs.writeFileSync(this.path, '');
  }
  onEpochEnd(epoch: number, logs: Logs): void {
    if (!this.keys) {
      this.keys = Object.keys(logs);
      if (!this.append || !fs.existsSync(this.path) || fs.statSync(this.path).size === 0) fs.appendFileSync(this.path, `epoch,${this.keys.join(',')}\n`);
    }
    fs.appendFileSync(this.path, `${epoch},${this.keys.map((k) => logs[k] ?? '').join(',')}\n`);
  }
}

/** Writes the whole history so far as JSON ({ epoch: [...], loss: [...], … }) to `path` after each epoch (atomically). */
export class JSONLogger implements Callback {
  readonly path: string;
  private history: Record<string, number[]> = {};
  constructor(options: { path: string }) {
    checkOptions(options, 'JSONLogger: options', optionNames<{ path: string }>({ path: true }));
    if (typeof options.path !== 'string' || options.path === '') throw new TypeError(`JSONLogger: options.path: expected a file path, got ${show(options.path)}`);
    this.path = options.path;
  }
  onTrainBegin(): void {
    this.history = {};
  }
  async onEpochEnd(epoch: number, logs: Logs): Promise<void> {
    (this.history.epoch ??= []).push(epoch);
    for (const [k, v] of Object.entries(logs)) (this.history[k] ??= []).push(v);
    await writeFileAtomic(this.path, `${JSON.stringify(this.history, null, 1)}\n`);
  }
}
