/**
 * The adding problem (Hochreiter & Schmidhuber 1997; Le et al. 2015), a classic test of long-range
 * memory. Each sequence has T steps of two features: a value drawn uniformly from [0, 1] and a
 * marker that is 1 at exactly two steps — one in the first half, one in the second — and 0 elsewhere.
 * The target is the sum of the two marked values. Always predicting 1 (the mean target) scores
 * MSE = Var(a + b) = 1/6 ≈ 0.167; a model must remember the first marked value across the sequence
 * to do better.
 *
 * An LSTM reads the sequence, a Dense layer maps its last output to the prediction, and Adam
 * minimises the MSE on freshly generated batches. The held-out test set comes from its own random
 * stream. Exit code 0 when the test MSE beats the baseline at least 5×, 1 when it does not,
 * 2 on bad arguments.
 *
 *   node --import tsx examples/adding-problem.ts [--steps 3000] [--seq-len 100] [--units 32]
 *                                                [--batch 32] [--lr 0.01] [--seed 1]     (defaults shown)
 */
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import cliProgress from 'cli-progress';

import { Adam, clipGradNorm, Dense, LSTM, mseLoss, Random, Tensor, type Optimizer } from '../lib/index.js';

export interface AddingBatch {
  /** [batch, steps, 2]: (value, marker) per step. */
  x: Tensor;
  /** [batch, 1]: the sum of the two marked values. */
  y: Tensor;
}

/** A batch of adding-problem sequences of `steps` (>= 2) steps drawn from `rng`, float32. */
export function addingProblemBatch(rng: Random, batch: number, steps: number): AddingBatch {
  const x = new Float32Array(batch * steps * 2);
  const y = new Float32Array(batch);
  const half = Math.floor(steps / 2);
  for (let b = 0; b < batch; b++) {
    const o = b * steps * 2;
    for (let t = 0; t < steps; t++) x[o + 2 * t] = rng.next();
    const first = rng.int(half);
    const second = half + rng.int(steps - half);
    x[o + 2 * first + 1] = 1;
    x[o + 2 * second + 1] = 1;
    y[b] = x[o + 2 * first] + x[o + 2 * second];
  }
  return { x: Tensor.from(x, [batch, steps, 2]), y: Tensor.from(y, [batch, 1]) };
}

/** LSTM(units) over the sequence, then Dense(1) on its last output. */
export class AddingModel {
  readonly lstm: LSTM;
  readonly head: Dense;

  constructor({ units, seed }: { units: number; seed: number }) {
    this.lstm = new LSTM({ inputSize: 2, units, seed });
    this.head = new Dense({ inputSize: units, units: 1, seed: seed + 1 });
  }

  /** All parameters, live, keyed like a PyTorch module's state dict ('lstm.weight_ih_l0', 'head.weight', …). */
  parameters(): Record<string, Tensor> {
    return { ...prefixKeys('lstm.', this.lstm.stateDict()), ...prefixKeys('head.', this.head.stateDict()) };
  }

  /** Predictions [batch, 1] for x: [batch, steps, 2]. */
  predict(x: Tensor): Tensor {
    return this.head.forward(this.lstm.forward(x).output).output;
  }

  /**
   * One optimisation step on a batch: forward, MSE, backward, global-norm clipping to maxGradNorm,
   * optimizer update. Returns the batch's loss before the update.
   */
  trainStep(batch: AddingBatch, optimizer: Optimizer, maxGradNorm: number): number {
    const rec = this.lstm.forward(batch.x, { training: true });
    const out = this.head.forward(rec.output, { training: true });
    const { loss, grad } = mseLoss(out.output, batch.y);
    const headGrads = this.head.backward(out.run!, grad);
    const lstmGrads = this.lstm.backward(rec.run!, headGrads.input);
    const grads = { ...prefixKeys('lstm.', lstmGrads.params), ...prefixKeys('head.', headGrads.params) };
    clipGradNorm(grads, maxGradNorm);
    optimizer.step(this.parameters(), grads);
    return loss;
  }
}

function prefixKeys(prefix: string, dict: Record<string, Tensor>): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(dict).map(([k, v]) => [prefix + k, v]));
}

/** Test MSE of the model and of the constant prediction 1 on the same data. */
export function evaluate(model: AddingModel, data: AddingBatch): { mse: number; baseline: number } {
  const y = data.y.data;
  let baseline = 0;
  for (let k = 0; k < y.length; k++) baseline += (y[k] - 1) ** 2 / y.length;
  return { mse: mseLoss(model.predict(data.x), data.y).loss, baseline };
}

// ---------------------------------------------------------------------------------------------
// Command line

/** Gradients are clipped to this global norm. */
const MAX_GRAD_NORM = 1;
/** The learning rate decays linearly to LR_FINAL_FRACTION·lr over the last LR_DECAY_FRACTION of training. */
const LR_DECAY_FRACTION = 0.3;
const LR_FINAL_FRACTION = 0.1;
/** Held-out test sequences. */
const TEST_SIZE = 2000;
/** The run fails (exit code 1) unless baseline / test MSE reaches this. */
const REQUIRED_RATIO = 5;
/** Without a TTY, a progress line every this many steps. */
const LOG_EVERY = 250;
/** The progress shows the training loss as an exponential moving average with this weight on each new batch. */
const LOSS_EMA_WEIGHT = 0.02;

interface Flag {
  default: number;
  ok: (v: number) => boolean;
  expected: string;
}

const intAtLeast = (lo: number) => (v: number) => Number.isSafeInteger(v) && v >= lo;

/** Command-line flags, each taking a number: default, check, and what the check expects. */
const FLAGS = {
  steps: { default: 3000, ok: intAtLeast(1), expected: 'a positive integer' },
  'seq-len': { default: 100, ok: intAtLeast(2), expected: 'an integer >= 2' },
  units: { default: 32, ok: intAtLeast(1), expected: 'a positive integer' },
  batch: { default: 32, ok: intAtLeast(1), expected: 'a positive integer' },
  lr: { default: 0.01, ok: (v) => v > 0, expected: 'a positive number' },
  seed: { default: 1, ok: (v) => intAtLeast(0)(v) && v < 2 ** 32, expected: 'an integer in [0, 2^32)' },
} satisfies Record<string, Flag>;

type FlagName = keyof typeof FLAGS;

const USAGE =
  'usage: node --import tsx examples/adding-problem.ts ' +
  Object.entries(FLAGS)
    .map(([name, flag]) => `[--${name} ${flag.default}]`)
    .join(' ');

class UsageError extends Error {}

interface Config {
  steps: number;
  seqLen: number;
  units: number;
  batch: number;
  lr: number;
  seed: number;
}

/** Reads the flags (defaults for absent ones); throws UsageError on unknown flags or bad values. */
function parseConfig(argv: string[]): Config {
  const options = Object.fromEntries(Object.keys(FLAGS).map((name) => [name, { type: 'string' }])) as Record<
    FlagName,
    { type: 'string' }
  >;
  let values: Partial<Record<FlagName, string>>;
  try {
    ({ values } = parseArgs({ args: argv, options, strict: true }));
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const get = (name: FlagName): number => {
    const raw = values[name];
    const flag: Flag = FLAGS[name];
    if (raw === undefined) return flag.default;
    const v = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(v) || !flag.ok(v)) {
      throw new UsageError(`--${name}: expected ${flag.expected}, got '${raw}'`);
    }
    return v;
  };
  return {
    steps: get('steps'),
    seqLen: get('seq-len'),
    units: get('units'),
    batch: get('batch'),
    lr: get('lr'),
    seed: get('seed'),
  };
}

/** Step-by-step progress: a cli-progress bar on a TTY, else a log line every LOG_EVERY steps. */
function makeProgress(total: number): { update(step: number, loss: number): void; stop(): void } {
  const start = performance.now();
  if (!process.stdout.isTTY) {
    return {
      update(step, loss) {
        if (step % LOG_EVERY === 0 || step === total) {
          const elapsed = ((performance.now() - start) / 1000).toFixed(1);
          console.log(`step ${step}/${total}  loss (smoothed) ${loss.toFixed(5)}  elapsed ${elapsed}s`);
        }
      },
      stop() {},
    };
  }
  const bar = new cliProgress.SingleBar(
    {
      format: 'training |{bar}| step {value}/{total} | loss (smoothed) {loss} | elapsed {duration_formatted}',
      stream: process.stdout,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { loss: '-' });
  return {
    update(step, loss) {
      bar.update(step, { loss: loss.toFixed(5) });
    },
    stop() {
      bar.stop();
    },
  };
}

function main(argv: string[]): number {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return 0;
  }
  let cfg: Config;
  try {
    cfg = parseConfig(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`adding-problem: ${err.message}\n${USAGE}`);
    return 2;
  }
  console.log(
    `Adding problem: T=${cfg.seqLen}, LSTM(${cfg.units}) + Dense(1), Adam lr=${cfg.lr}, ` +
      `batch ${cfg.batch}, ${cfg.steps} steps, seed ${cfg.seed}`,
  );
  const model = new AddingModel({ units: cfg.units, seed: cfg.seed });
  const optimizer = new Adam({ lr: cfg.lr });
  const trainRng = new Random(cfg.seed);
  const testRng = new Random((cfg.seed ^ 0x9e3779b9) >>> 0);

  const decayStart = Math.floor(cfg.steps * (1 - LR_DECAY_FRACTION));
  const progress = makeProgress(cfg.steps);
  const started = performance.now();
  let smoothed = NaN;
  for (let step = 1; step <= cfg.steps; step++) {
    const decay = Math.max(0, (step - decayStart) / (cfg.steps - decayStart));
    optimizer.lr = cfg.lr * (1 - (1 - LR_FINAL_FRACTION) * decay);
    const loss = model.trainStep(addingProblemBatch(trainRng, cfg.batch, cfg.seqLen), optimizer, MAX_GRAD_NORM);
    if (!Number.isFinite(loss)) {
      progress.stop();
      console.error(`adding-problem: the training loss became ${loss} at step ${step}; try a smaller --lr`);
      return 1;
    }
    smoothed = Number.isNaN(smoothed) ? loss : smoothed + LOSS_EMA_WEIGHT * (loss - smoothed);
    progress.update(step, smoothed);
  }
  progress.stop();
  const trainSeconds = (performance.now() - started) / 1000;

  const { mse, baseline } = evaluate(model, addingProblemBatch(testRng, TEST_SIZE, cfg.seqLen));
  const ratio = baseline / mse;
  console.log(`trained in ${trainSeconds.toFixed(1)}s`);
  console.log(`test MSE (${TEST_SIZE} held-out sequences): ${mse.toFixed(5)}`);
  console.log(`baseline MSE (always predict 1):           ${baseline.toFixed(5)}`);
  console.log(`baseline / test MSE:                       ${ratio.toFixed(1)}×`);
  if (!(ratio >= REQUIRED_RATIO)) {
    console.error(
      `adding-problem: FAILED — the test MSE beats the baseline only ${ratio.toFixed(2)}× (needs ${REQUIRED_RATIO}×); ` +
        'train longer (--steps) or on shorter sequences (--seq-len)',
    );
    return 1;
  }
  return 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = main(process.argv.slice(2));
}
