// The variant lab: trains a grid of cells × tasks × seeds with fixed seeds, records learning curves,
// steps to solve and time per run, and the gradient flow ‖∂L/∂h_t‖ of chosen cells at
// initialisation and after training; writes a results table, JSON and SVG pictures.
import fs from 'node:fs';
import path from 'node:path';
import cliProgress from 'cli-progress';
import { Random } from '../init.js';
import { Tensor } from '../tensor.js';
import { checkOptions, optionNames, show } from '../options.js';
import { Dense } from '../layers/dense.js';
import { LSTM, type Recurrent } from '../layers/recurrent.js';
import { Adam, clipGradNorm } from '../train/optimizers.js';
import { getLoss, mseLoss } from '../train/losses.js';
import { stateGradients } from '../train/diagnostics.js';
import { native } from '../native.js';
import { CELL_LABELS, CELL_NAMES, makeCell, type CellName } from './cells.js';
import {
  addingTask, charTask, copyTask, DEFAULT_TEXT, latchTask, readText, reberTask, type Batch, type ContinualTask, type Task,
} from './tasks.js';
import { gradientFlowChart, learningCurveChart, svgToPng } from './charts.js';
import { resultsMarkdown, summarize, type SummaryRow } from './report.js';

export const EXPERIMENTS = ['adding', 'reber', 'copy', 'latch', 'charlm'] as const;
export type ExperimentName = (typeof EXPERIMENTS)[number];

export interface LabOptions {
  /** One experiment, or 'all' (each with its defaults, overridden by the options given). */
  experiment: ExperimentName | 'all';
  /** Cells to train (default: the experiment's). */
  cells?: CellName[];
  /** Repetitions per cell: seeds 1 … seeds (default: the experiment's). */
  seeds?: number;
  /** Training steps (batches) per run. */
  steps?: number;
  /** Sequence lengths: adding and latch T, copy delays, Reber windows, char-LM windows. */
  lengths?: number[];
  units?: number;
  batch?: number;
  /** Adam's learning rate. */
  lr?: number;
  /** Held-out evaluation every this many steps (the learning curve's resolution). */
  evalEvery?: number;
  /** Wall-clock budget for the whole lab in seconds: each run gets its share of what is left (default: none). */
  budgetSeconds?: number;
  /** Directory for results.json, results.md and the SVG pictures (default: nothing written). */
  out?: string;
  /** A cli-progress bar on stderr (default false). */
  progress?: boolean;
  /** Native threads (default 1: the lab's layers are small). */
  threads?: number;
  /** The char-LM corpus (default the demo's examples/data/kjv.txt.gz). */
  text?: string;
  /** Cells whose gradient flow is recorded (adding experiment; default tanh, irnn, lstm, gru among `cells`). */
  flowCells?: CellName[];
  /** The adding length T of the gradient-flow pictures (default: the shortest, where the gated cells learn). */
  flowLength?: number;
  /** Held-out set size (sequences; default the experiment's). */
  testSize?: number;
  /** Also write each picture as PNG (rendered from the SVG at twice its size; default false). */
  png?: boolean;
}
const LAB_OPTIONS = optionNames<LabOptions>({
  experiment: true, cells: true, seeds: true, steps: true, lengths: true, units: true, batch: true, lr: true, evalEvery: true, budgetSeconds: true,
  out: true, progress: true, threads: true, text: true, flowCells: true, flowLength: true, testSize: true, png: true,
});

interface Defaults {
  cells: CellName[];
  seeds: number;
  steps: number;
  lengths: number[];
  units: number;
  batch: number;
  lr: number;
  evalEvery: number;
  testSize: number;
}

/** Each experiment's full-run defaults (what docs/lab.md reports). */
export const EXPERIMENT_DEFAULTS: Record<ExperimentName, Defaults> = {
  adding: { cells: ['tanh', 'irnn', 'lstm', 'np', 'cifg', 'gru'], seeds: 2, steps: 600, lengths: [50, 100, 200], units: 32, batch: 32, lr: 0.01, evalEvery: 25, testSize: 500 },
  reber: { cells: [...CELL_NAMES], seeds: 2, steps: 1500, lengths: [20], units: 16, batch: 16, lr: 0.01, evalEvery: 100, testSize: 8 },
  copy: { cells: ['tanh', 'irnn', 'lstm', 'np', 'cifg', 'nfg', 'nog', 'gru'], seeds: 2, steps: 2500, lengths: [20], units: 32, batch: 32, lr: 0.01, evalEvery: 100, testSize: 500 },
  latch: { cells: ['tanh', 'irnn', 'lstm', 'np', 'cifg', 'nfg', 'nog', 'gru'], seeds: 2, steps: 400, lengths: [50], units: 32, batch: 32, lr: 0.01, evalEvery: 25, testSize: 500 },
  charlm: { cells: ['tanh', 'lstm', 'nig', 'nfg', 'nog', 'niaf', 'noaf', 'np', 'cifg', 'fgr', 'gru'], seeds: 2, steps: 250, lengths: [50], units: 48, batch: 32, lr: 0.005, evalEvery: 25, testSize: 64 },
};

/** Copy task: symbols to remember. */
const COPY_LENGTH = 5;
/** Reber: symbols per test stream (each scored in one pass from a zero state, no resets). */
const REBER_TEST_LENGTH = 3000;
/** Char LM: training characters (from the start of the text). */
const CHAR_TRAIN = 400_000;
/** Gradients are clipped to this global norm. */
const MAX_GRAD_NORM = 1;
/** Sequences of the gradient-flow probe batch. */
const FLOW_BATCH = 32;

export interface CurvePoint {
  step: number;
  metric: number;
}

export interface RunResult {
  experiment: ExperimentName;
  task: string;
  cell: CellName;
  seed: number;
  /** Steps trained (fewer than asked when the budget ran out or the loss became non-finite). */
  steps: number;
  curve: CurvePoint[];
  final: number;
  /** The first evaluation step at which the task counted as solved, or null. */
  solvedStep: number | null;
  seconds: number;
  budgetHit: boolean;
  diverged: boolean;
  /** Reber with an LSTM cell: cellRms, the RMS of c at the end of the test pass (no resets). */
  extra: Record<string, number>;
}

export interface FlowResult {
  task: string;
  cell: CellName;
  phase: 'initialisation' | 'after training';
  /** ‖∂L/∂h_t‖, t = 0 … T−1 (L: the task's loss on the probe batch). */
  norms: number[];
}

export interface LabResult {
  experiments: { name: ExperimentName; config: Defaults; tasks: { name: string; metric: string; baseline: number; lowerIsBetter: boolean; solvedAt: number }[] }[];
  runs: RunResult[];
  flows: FlowResult[];
  summary: SummaryRow[];
  /** Files written under options.out. */
  files: string[];
  seconds: number;
  threads: number;
}

// ---------------------------------------------------------------------------------------------
// Options

function positiveInt(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new RangeError(`${what}: expected a positive integer, got ${show(v)}`);
  return v;
}

function checkLabOptions(options: LabOptions): void {
  const where = 'runLab: options';
  if (typeof options !== 'object' || options === null) throw new TypeError(`${where}: expected an object`);
  checkOptions(options, where, LAB_OPTIONS);
  const e = options.experiment;
  if (e !== 'all' && !EXPERIMENTS.includes(e as ExperimentName)) throw new TypeError(`${where}.experiment: expected one of ${EXPERIMENTS.join(', ')} or 'all', got ${show(e)}`);
  const cellList = (v: unknown, name: string): void => {
    if (v === undefined) return;
    if (!Array.isArray(v) || v.length === 0) throw new TypeError(`${where}.${name}: expected a non-empty array of cell names (${CELL_NAMES.join(', ')})`);
    for (const c of v) if (!CELL_NAMES.includes(c)) throw new TypeError(`${where}.${name}: unknown cell ${show(c)} (known: ${CELL_NAMES.join(', ')})`);
  };
  cellList(options.cells, 'cells');
  cellList(options.flowCells, 'flowCells');
  for (const k of ['seeds', 'steps', 'units', 'batch', 'evalEvery', 'threads', 'flowLength', 'testSize'] as const) {
    if (options[k] !== undefined) positiveInt(options[k], `${where}.${k}`);
  }
  if (options.lengths !== undefined) {
    if (!Array.isArray(options.lengths) || options.lengths.length === 0) throw new TypeError(`${where}.lengths: expected a non-empty array of integers >= 2`);
    for (const n of options.lengths) if (!Number.isSafeInteger(n) || n < 2) throw new RangeError(`${where}.lengths: expected integers >= 2, got ${show(n)}`);
  }
  if (options.lr !== undefined && !(typeof options.lr === 'number' && options.lr > 0 && options.lr < 10)) throw new RangeError(`${where}.lr: expected a number in (0, 10), got ${show(options.lr)}`);
  if (options.budgetSeconds !== undefined && !(typeof options.budgetSeconds === 'number' && options.budgetSeconds > 0)) {
    throw new RangeError(`${where}.budgetSeconds: expected a positive number, got ${show(options.budgetSeconds)}`);
  }
  if (options.out !== undefined && (typeof options.out !== 'string' || options.out === '')) throw new TypeError(`${where}.out: expected a directory path`);
  if (options.text !== undefined && (typeof options.text !== 'string' || !fs.existsSync(options.text))) throw new TypeError(`${where}.text: expected an existing text file (.txt or .txt.gz), got ${show(options.text)}`);
  if (options.progress !== undefined && typeof options.progress !== 'boolean') throw new TypeError(`${where}.progress: expected a boolean`);
  if (options.png !== undefined && typeof options.png !== 'boolean') throw new TypeError(`${where}.png: expected a boolean`);
  if (options.png && options.out === undefined) throw new TypeError(`${where}.png: needs options.out (the directory the pictures go to)`);
}

function configFor(name: ExperimentName, o: LabOptions): Defaults {
  const d = EXPERIMENT_DEFAULTS[name];
  return {
    cells: o.cells ?? d.cells, seeds: o.seeds ?? d.seeds, steps: o.steps ?? d.steps, lengths: o.lengths ?? d.lengths, units: o.units ?? d.units,
    batch: o.batch ?? d.batch, lr: o.lr ?? d.lr, evalEvery: o.evalEvery ?? d.evalEvery, testSize: o.testSize ?? d.testSize,
  };
}

function tasksFor(name: ExperimentName, c: Defaults, o: LabOptions): Task[] {
  switch (name) {
    case 'adding': return c.lengths.map((T) => addingTask(T, c.testSize, 1));
    case 'copy': return c.lengths.map((D) => copyTask(COPY_LENGTH, D, c.testSize, 1));
    case 'latch': return c.lengths.map((T) => latchTask(T, c.testSize, 1));
    case 'reber': return c.lengths.map((W) => reberTask(W, c.testSize, REBER_TEST_LENGTH, 1));
    case 'charlm': {
      const text = readText(o.text ?? DEFAULT_TEXT);
      return c.lengths.map((W) => charTask(text, W, CHAR_TRAIN, c.testSize, 1));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// One run

class Model {
  readonly rnn: Recurrent;
  readonly head: Dense;
  private readonly ce = getLoss({ name: 'sparseCategoricalCrossentropy', fromLogits: true });
  private carried: Tensor[] | undefined;

  constructor(readonly task: Task, cell: CellName, units: number, seed: number) {
    this.rnn = makeCell(cell, { inputSize: task.inputSize, units, seed, returnSequences: task.perStep, returnState: task.continual });
    this.head = new Dense({ inputSize: units, units: task.outputSize, seed: seed + 7919 });
  }

  params(): Record<string, Tensor> {
    return { ...prefix('rnn.', this.rnn.stateDict()), ...prefix('head.', this.head.stateDict()) };
  }

  /** Logits or predictions for x (inference); a continual task starts from zeros and returns its final states. */
  predict(x: Tensor): { pred: Tensor; states: Tensor[] } {
    const r = this.rnn.forward(x);
    return { pred: this.head.forward(r.output).output, states: r.states };
  }

  /** The loss and its gradient at the head's output. */
  loss(pred: Tensor, b: Batch): { loss: number; grad: Tensor } {
    if (this.task.loss === 'mse') return mseLoss(pred, b.y as Tensor);
    const C = pred.shape[pred.rank - 1];
    const r = this.ce.compute(Tensor.from(pred.data, [pred.size / C, C]), b.y as Int32Array, b.weights);
    return { loss: r.loss, grad: Tensor.from(r.grad.data, pred.shape) };
  }

  step(b: Batch, opt: Adam): number {
    const rec = this.rnn.forward(b.x, { training: true, ...(this.carried ? { initialState: this.carried } : {}) });
    const out = this.head.forward(rec.output, { training: true });
    const { loss, grad } = this.loss(out.output, b);
    const hg = this.head.backward(out.run!, grad);
    const g = this.rnn.backward(rec.run!, hg.input);
    rec.run!.release();
    // A continual task carries the final states into the next window (detached: truncated BPTT).
    if (this.task.continual) this.carried = rec.states.map((s) => Tensor.from(s.data.slice(), s.shape));
    const grads = { ...prefix('rnn.', g.params), ...prefix('head.', hg.params) };
    clipGradNorm(grads, MAX_GRAD_NORM);
    opt.step(this.params(), grads);
    return loss;
  }

  /** ‖∂L/∂h_t‖ over t on a probe batch (L: the task's loss). */
  flow(b: Batch): number[] {
    const rec = this.rnn.forward(b.x, { training: true });
    rec.run!.release();
    const out = this.head.forward(rec.output, { training: true });
    const { grad } = this.loss(out.output, b);
    const d = this.head.backward(out.run!, grad).input;
    return [...stateGradients(this.rnn, b.x, d).norms];
  }
}

function prefix(p: string, d: Record<string, Tensor>): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(d).map(([k, v]) => [p + k, v]));
}

function probe(task: Task): Batch {
  const B = Math.min(FLOW_BATCH, task.test.x.shape[0]);
  const [, T, I] = task.test.x.shape as [number, number, number];
  const x = Tensor.from(task.test.x.data.slice(0, B * T * I), [B, T, I]);
  const y = task.test.y instanceof Int32Array ? task.test.y.slice(0, task.perStep ? B * T : B) : Tensor.from(task.test.y.data.slice(0, B * task.outputSize), [B, task.outputSize]);
  return { x, y, ...(task.test.weights ? { weights: task.test.weights.slice(0, B * T) } : {}) };
}

interface RunArgs {
  experiment: ExperimentName;
  task: Task;
  cell: CellName;
  seed: number;
  config: Defaults;
  deadline: number;
  flow: boolean;
  onStep: () => void;
}

function evaluate(m: Model, task: Task): { metric: number; extra: Record<string, number> } {
  const { pred, states } = m.predict(task.test.x);
  const extra: Record<string, number> = {};
  if (task.continual) {
    const s = (task as ContinualTask).scoreStreams(pred);
    if (m.rnn instanceof LSTM && states[1]) {
      const c = states[1].data;
      let sq = 0;
      for (let k = 0; k < c.length; k++) sq += c[k] * c[k];
      extra.cellRms = Math.sqrt(sq / c.length);
    }
    return { metric: s.strings, extra };
  }
  return { metric: task.score(pred), extra };
}

function runOne(a: RunArgs): { run: RunResult; flows: FlowResult[] } {
  const { task, cell, seed, config } = a;
  const m = new Model(task, cell, config.units, seed);
  const opt = new Adam({ lr: config.lr });
  const rng = new Random(seed * 7 + 1);
  const flows: FlowResult[] = [];
  const pb = a.flow ? probe(task) : undefined;
  if (pb) flows.push({ task: task.name, cell, phase: 'initialisation', norms: m.flow(pb) });
  const started = performance.now();
  const curve: CurvePoint[] = [];
  let solvedStep: number | null = null, budgetHit = false, diverged = false, step = 0;
  let extra: Record<string, number> = {};
  const better = (v: number) => (task.lowerIsBetter ? v <= task.solvedAt : v >= task.solvedAt);
  const record = (): void => {
    const e = evaluate(m, task);
    curve.push({ step, metric: e.metric });
    extra = e.extra;
    if (solvedStep === null && better(e.metric)) solvedStep = step;
  };
  record();
  while (step < config.steps) {
    if (performance.now() > a.deadline) {
      budgetHit = true;
      break;
    }
    const loss = m.step(task.train(rng, config.batch), opt);
    step++;
    a.onStep();
    if (!Number.isFinite(loss)) {
      diverged = true;
      break;
    }
    if (step % config.evalEvery === 0 || step === config.steps) record();
  }
  if (curve[curve.length - 1].step !== step && !diverged) record();
  const seconds = (performance.now() - started) / 1000;
  if (pb && !diverged) flows.push({ task: task.name, cell, phase: 'after training', norms: m.flow(pb) });
  const final = diverged ? NaN : curve[curve.length - 1].metric;
  return {
    run: { experiment: a.experiment, task: task.name, cell, seed, steps: step, curve, final, solvedStep, seconds, budgetHit, diverged, extra },
    flows,
  };
}

// ---------------------------------------------------------------------------------------------
// The lab

/**
 * Runs the lab: for each experiment, task (sequence length), cell and seed, trains the cell with
 * a Dense head by Adam on fresh batches and evaluates it on a fixed held-out set. Deterministic for
 * given options (fixed seeds) unless the budget cuts runs short.
 */
export async function runLab(options: LabOptions): Promise<LabResult> {
  checkLabOptions(options);
  const names = options.experiment === 'all' ? [...EXPERIMENTS] : [options.experiment];
  const threadsBefore = native.getNumThreads();
  native.setNumThreads(options.threads ?? 1);
  const started = performance.now();
  try {
    const plans = names.map((name) => {
      const config = configFor(name, options);
      return { name, config, tasks: tasksFor(name, config, options) };
    });
    const jobs: { experiment: ExperimentName; task: Task; cell: CellName; seed: number; config: Defaults; flow: boolean }[] = [];
    for (const p of plans) {
      const flowCells = options.flowCells ?? (['tanh', 'irnn', 'lstm', 'gru'] as CellName[]);
      const lengths = p.tasks.map((t) => t.steps);
      const flowLength = options.flowLength ?? Math.min(...lengths);
      for (const task of p.tasks) {
        for (const cell of p.config.cells) {
          for (let s = 1; s <= p.config.seeds; s++) {
            const flow = p.name === 'adding' && s === 1 && flowCells.includes(cell) && cell !== 'fgr' && task.steps === flowLength;
            jobs.push({ experiment: p.name, task, cell, seed: s, config: p.config, flow });
          }
        }
      }
    }
    const totalSteps = jobs.reduce((a, j) => a + j.config.steps, 0);
    const bar = options.progress
      ? new cliProgress.SingleBar({
        format: 'lab |{bar}| {percentage}% | run {run}/{runs} {what} | elapsed {duration_formatted} | eta {eta_formatted}',
        stream: process.stderr, hideCursor: true, etaBuffer: 200,
        // Off a terminal (a log, CI) the bar is printed as a line every 10 s.
        noTTYOutput: true, notTTYSchedule: 10_000,
      }, cliProgress.Presets.shades_classic)
      : undefined;
    bar?.start(totalSteps, 0, { run: 0, runs: jobs.length, what: '' });
    const runs: RunResult[] = [], flows: FlowResult[] = [];
    const budgetMs = options.budgetSeconds === undefined ? Infinity : options.budgetSeconds * 1000;
    let done = 0;
    for (let k = 0; k < jobs.length; k++) {
      const j = jobs[k];
      const left = budgetMs - (performance.now() - started);
      const deadline = performance.now() + left / (jobs.length - k);
      bar?.update({ run: k + 1, what: `${j.experiment} ${j.task.name} ${CELL_LABELS[j.cell].label} seed ${j.seed}` });
      const r = runOne({ ...j, deadline, onStep: () => bar?.update(++done) });
      done += j.config.steps - r.run.steps;
      bar?.update(done);
      runs.push(r.run);
      flows.push(...r.flows);
      await new Promise((resolve) => setImmediate(resolve));
    }
    bar?.stop();
    const summary = summarize(runs);
    const result: LabResult = {
      experiments: plans.map((p) => ({
        name: p.name, config: p.config,
        tasks: p.tasks.map((t) => ({ name: t.name, metric: t.metric, baseline: t.baseline, lowerIsBetter: t.lowerIsBetter, solvedAt: t.solvedAt })),
      })),
      runs, flows, summary, files: [], seconds: (performance.now() - started) / 1000, threads: options.threads ?? 1,
    };
    if (options.out !== undefined) result.files = await writeResults(result, options.out, { png: options.png ?? false });
    return result;
  } finally {
    native.setNumThreads(threadsBefore);
  }
}

/**
 * Writes results.json, results.md and one SVG per experiment (plus lab-gradient-flow.svg) into
 * `dir`; with `png`, each picture also as PNG.
 */
export async function writeResults(result: LabResult, dir: string, options: { png?: boolean } = {}): Promise<string[]> {
  fs.mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  const put = (name: string, text: string | Buffer): void => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, text);
    files.push(p);
    if (options.png && name.endsWith('.svg')) put(name.replace(/\.svg$/, '.png'), svgToPng(text as string));
  };
  put('results.json', JSON.stringify(result, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 1));
  for (const e of result.experiments) {
    put(`lab-${e.name}-curves.svg`, await learningCurveChart(result.runs.filter((r) => r.experiment === e.name), e.tasks));
  }
  if (result.flows.length > 0) put('lab-gradient-flow.svg', await gradientFlowChart(result.flows));
  put('results.md', resultsMarkdown(result));
  return files;
}
