// Training benchmark of the demo's model (examples/char-lm.ts): one optimizer step (forward +
// backward + update) of Embedding(62→32) → 2-layer LSTM(192, dropout 0.1) → Dense(62) per step,
// sparse softmax cross-entropy from logits, Adam(0.006, clipNorm 5), on random ids, for rnnkit,
// tfjs (cpu and wasm backends) and PyTorch (bench/train_row.py), interleaved round by round.
//   node --import tsx bench/train-row.ts [--rounds 3] [--iters 5] [--tfjs-iters 2] [--batch 64] [--steps 64] [--skip tfjs-cpu,torch]
//   (npm run bench:train -- [options])
// Results go to stdout; one progress line per measurement goes to stderr.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Adam, Dense, Embedding, getNumThreads, LSTM, Sequential, setNumThreads, Tensor } from '../lib/index.js';
import { activateTfBackend, wasmBackendInfo, positiveInt } from './peers.js';
import { TorchPeer } from './torch-peer.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const VOCAB = 62, EMBED = 32, UNITS = 192, LR = 0.006, CLIP = 5, DROPOUT = 0.1;
const IMPLS = ['rnnkit', 'tfjs-cpu', 'tfjs-wasm', 'torch'] as const;
type ImplName = (typeof IMPLS)[number];
/** rnnkit's pool size, as bench.ts's default --threads. */
const RNNKIT_THREADS = 2;
const TORCH_THREADS = [1, 2];

const HELP = `Usage: node --import tsx bench/train-row.ts [options]   (npm run bench:train -- [options])

  --rounds N       interleaved rounds (default 3)
  --iters N        timed steps of rnnkit and of torch (per thread count) per round (default 5)
  --tfjs-iters N   timed steps of each tfjs backend per round, after 1 warm-up step in all (default 2)
  --batch N        sequences per step (default 64)
  --steps N        time steps per sequence (default 64)
  --skip LIST      comma list of ${IMPLS.join(',')}
  --help`;

interface Settings {
  rounds: number;
  iters: number;
  tfjsIters: number;
  batch: number;
  steps: number;
  skip: Set<ImplName>;
}

function parseSettings(argv: string[]): Settings {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      rounds: { type: 'string' },
      iters: { type: 'string' },
      'tfjs-iters': { type: 'string' },
      batch: { type: 'string' },
      steps: { type: 'string' },
      skip: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    console.log(HELP);
    process.exit(0);
  }
  const skip = new Set<ImplName>();
  for (const s of (values.skip ?? '').split(',').map((k) => k.trim()).filter(Boolean)) {
    if (!(IMPLS as readonly string[]).includes(s)) throw new RangeError(`--skip: unknown implementation '${s}'; the implementations are ${IMPLS.join(', ')}`);
    skip.add(s as ImplName);
  }
  return {
    rounds: positiveInt(values.rounds, '--rounds', 3),
    iters: positiveInt(values.iters, '--iters', 5),
    tfjsIters: positiveInt(values['tfjs-iters'], '--tfjs-iters', 2),
    batch: positiveInt(values.batch, '--batch', 64),
    steps: positiveInt(values.steps, '--steps', 64),
    skip,
  };
}

function packageVersion(name: string): string | undefined {
  try {
    return (JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function fmt3(v: number): string {
  if (!Number.isFinite(v)) return '—';
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  if (v >= 1) return v.toFixed(2);
  return v.toPrecision(3);
}

const t0 = performance.now();
function progress(msg: string): void {
  process.stderr.write(`[bench:train ${((performance.now() - t0) / 1000).toFixed(1)}s] ${msg}\n`);
}

/** Random ids in [0, VOCAB) (mulberry32, fixed seed): the same x and y for every implementation. */
function randomIds(n: number, seed: number): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * VOCAB);
  }
  return out;
}

/** One row of the table: `run(calls)` returns one wall time (ms) per optimizer step. */
interface Runner {
  key: string;
  label: string;
  config: string;
  calls: number;
  run(calls: number): Promise<number[]>;
  samplesMs: number[];
  error?: string;
}

async function timeSteps(calls: number, step: (i: number) => Promise<unknown>): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < calls; i++) {
    const s = performance.now();
    await step(i);
    ms.push(performance.now() - s);
  }
  return ms;
}

// ---------------------------------------------------------------------------------------------
// rnnkit

function rnnkitRunner(s: Settings, xIds: Float32Array, yIds: Float32Array): Runner {
  const model = new Sequential([
    new Embedding({ inputDim: VOCAB, outputDim: EMBED }),
    new LSTM({ units: UNITS, numLayers: 2, dropout: DROPOUT, returnSequences: true }),
    new Dense({ units: VOCAB }),
  ], { seed: 1 });
  model.compile({
    optimizer: new Adam({ learningRate: LR, clipNorm: CLIP }),
    loss: { name: 'sparseCategoricalCrossentropy', fromLogits: true },
  });
  const x = Tensor.from(xIds, [s.batch, s.steps]);
  const y = Tensor.from(yIds, [s.batch, s.steps]);
  let seed = 0;
  return {
    key: 'rnnkit',
    label: 'rnnkit',
    config: `${getNumThreads()} thread(s); Sequential(Embedding, LSTM numLayers 2 dropout ${DROPOUT}, Dense); Adam clipNorm ${CLIP}; computeGradients + optimizer.step`,
    calls: s.iters,
    samplesMs: [],
    run: (calls) =>
      timeSteps(calls, async () => {
        const { grads } = await model.computeGradients(x, y, { seed: seed++ });
        model.optimizer!.step(model.namedParameters(), grads);
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// tfjs (LayersModel.trainOnBatch)

async function tfjsRunner(s: Settings, backend: 'cpu' | 'wasm', xIds: Float32Array, yIds: Float32Array, extra: string): Promise<Runner> {
  const tf = await activateTfBackend(backend);
  const lstm = (dropout: number) =>
    tf.layers.lstm({
      units: UNITS,
      returnSequences: true,
      activation: 'tanh',
      recurrentActivation: 'sigmoid',
      // tfjs's default orthogonal recurrent initialiser runs a QR decomposition (slow, and warns): the values do not matter here.
      recurrentInitializer: 'glorotUniform',
      ...(dropout > 0 && { dropout }),
    });
  // The wasm backend has no UnsortedSegmentSum kernel (the gradient of the embedding's gather): there
  // the embedding is a bias-free dense layer on one-hot ids, the same function (one 62×32 matmul per id).
  const oneHotInput = backend === 'wasm';
  const model = tf.sequential({
    layers: [
      oneHotInput
        ? tf.layers.dense({ units: EMBED, useBias: false, inputShape: [s.steps, VOCAB] })
        : tf.layers.embedding({ inputDim: VOCAB, outputDim: EMBED, inputShape: [s.steps] }),
      lstm(0),
      lstm(DROPOUT),
      tf.layers.timeDistributed({ layer: tf.layers.dense({ units: VOCAB }) }),
    ],
  });
  model.compile({
    optimizer: tf.train.adam(LR),
    // Sparse categorical cross-entropy from logits: softmax cross-entropy on one-hot labels (made once, outside the timing).
    loss: (yTrue, yPred) => tf.losses.softmaxCrossEntropy(yTrue, yPred),
  });
  const x = oneHotInput
    ? tf.tidy(() => tf.oneHot(tf.tensor2d(xIds, [s.batch, s.steps], 'int32'), VOCAB).toFloat())
    : tf.tensor2d(xIds, [s.batch, s.steps]);
  const yOneHot = tf.tidy(() => tf.oneHot(tf.tensor2d(yIds, [s.batch, s.steps], 'int32'), VOCAB).toFloat());
  return {
    key: `tfjs-${backend}`,
    label: `tfjs-${backend}`,
    config:
      `${backend === 'cpu' ? 'pure JS, 1 thread' : extra}; tf.sequential(${oneHotInput ? 'one-hot ids → dense(32, no bias) as embedding (wasm has no UnsortedSegmentSum)' : 'embedding'}, lstm, lstm dropout ${DROPOUT}, timeDistributed dense); ` +
      `trainOnBatch, tf.train.adam(${LR}) (no clipnorm in tfjs), softmaxCrossEntropy on one-hot`,
    calls: s.tfjsIters,
    samplesMs: [],
    run: async (calls) => {
      await activateTfBackend(backend);
      return timeSteps(calls, () => model.trainOnBatch(x, yOneHot));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// PyTorch: bench/train_row.py in one long-lived child (torch-peer.ts's TorchPeer, one JSON request per line)

function torchRunners(s: Settings, peer: TorchPeer, config: string): Runner[] {
  return TORCH_THREADS.map((threads) => {
    const r: Runner = {
      key: `torch-${threads}`,
      label: `torch (${threads} thread${threads > 1 ? 's' : ''})`,
      config: `torch.set_num_threads(${threads}); ${config}`,
      calls: s.iters,
      samplesMs: [],
      run: async (calls) => {
        const a = await peer.request({ op: 'measure', calls, threads });
        if (a.threads !== threads) r.config = `torch.get_num_threads() = ${String(a.threads)} (asked ${threads}); ${config}`;
        return a.ms as number[];
      },
    };
    return r;
  });
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  let s: Settings;
  try {
    s = parseSettings(process.argv.slice(2));
  } catch (err) {
    console.error(`bench:train: ${err instanceof Error ? err.message : String(err)} (see --help)`);
    process.exit(2);
  }
  setNumThreads(RNNKIT_THREADS);
  const xIds = randomIds(s.batch * s.steps, 1), yIds = randomIds(s.batch * s.steps, 2);
  const versions: string[] = [`node ${process.version}`];
  const notes: string[] = [];
  const runners: Runner[] = [];
  let peer: TorchPeer | undefined;

  const attempt = async (what: string, make: () => Promise<Runner[]>) => {
    try {
      runners.push(...(await make()));
    } catch (err) {
      notes.push(`${what} left out: ${err instanceof Error ? err.message : String(err)}`);
      progress(`${what} left out: ${String(err)}`);
    }
  };
  if (!s.skip.has('rnnkit')) await attempt('rnnkit', async () => [rnnkitRunner(s, xIds, yIds)]);
  if (!s.skip.has('tfjs-cpu') || !s.skip.has('tfjs-wasm')) versions.push(`@tensorflow/tfjs ${packageVersion('@tensorflow/tfjs') ?? '?'}`);
  if (!s.skip.has('tfjs-cpu')) await attempt('tfjs-cpu', async () => [await tfjsRunner(s, 'cpu', xIds, yIds, '')]);
  if (!s.skip.has('tfjs-wasm')) {
    await attempt('tfjs-wasm', async () => {
      const w = await wasmBackendInfo();
      const info = `${w.threads} thread(s), SIMD ${w.simd ? 'on' : 'off'}`;
      versions.push(`@tensorflow/tfjs-backend-wasm ${packageVersion('@tensorflow/tfjs-backend-wasm') ?? '?'} (${info})`);
      return [await tfjsRunner(s, 'wasm', xIds, yIds, info)];
    });
  }
  if (!s.skip.has('torch')) {
    await attempt('PyTorch', async () => {
      const python = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
      progress(`starting ${python} bench/train_row.py`);
      const started = await TorchPeer.start(python, path.join(HERE, 'train_row.py'));
      peer = started.peer;
      const hello = started.info;
      versions.push(`torch ${hello.torch} (python ${hello.python}; torch.get_num_threads() at start ${String(hello.threads)})`);
      const setup = await peer.request({ op: 'setup', B: s.batch, T: s.steps, V: VOCAB, E: EMBED, H: UNITS, x: Array.from(xIds), y: Array.from(yIds) }, 120_000);
      console.log(`torch config: ${String(setup.config)}`);
      return torchRunners(s, peer, String(setup.config));
    });
  }

  const cpus = os.cpus();
  console.log(`machine:  ${cpus[0]?.model ?? 'unknown'}; ${cpus.length} logical cores (availableParallelism ${os.availableParallelism()}); ${process.platform} ${process.arch}; load ${os.loadavg().map((v) => v.toFixed(2)).join(' ')}`);
  console.log(`versions: ${versions.join(', ')}`);
  console.log(`rnnkit:   getNumThreads() = ${getNumThreads()}`);
  console.log(
    `problem:  Embedding(${VOCAB}→${EMBED}) → LSTM(${UNITS}) ×2 (dropout ${DROPOUT}) → Dense(${VOCAB}) per step; batch ${s.batch}, ${s.steps} steps; ` +
      `sparse softmax cross-entropy from logits; Adam(lr ${LR}); one optimizer step (forward + backward + update) on random ids`,
  );
  console.log(
    `method:   ${s.rounds} interleaved round(s) (${IMPLS.join(', ')}); per round ${s.iters} timed step(s) of rnnkit and torch (each thread count), ` +
      `${s.tfjsIters} of tfjs; 1 untimed warm-up step each before round 1; median over all timed steps`,
  );
  if (s.skip.size > 0) console.log(`skipped:  ${[...s.skip].join(', ')} (--skip)`);
  for (const n of notes) console.log(`skipped:  ${n}`);

  try {
    for (const r of runners) {
      progress(`${r.key}: warm-up step`);
      try {
        const ms = await r.run(1);
        progress(`${r.key}: warm-up ${(ms[0] / 1000).toFixed(3)} s`);
      } catch (err) {
        r.error = `warm-up: ${err instanceof Error ? err.message : String(err)}`;
      }
    }
    for (let round = 0; round < s.rounds; round++) {
      for (const r of runners) {
        if (r.error) continue;
        try {
          const ms = await r.run(r.calls);
          r.samplesMs.push(...ms);
          progress(`round ${round + 1} ${r.key}: ${ms.length} step(s), median ${(median(ms) / 1000).toFixed(3)} s/step`);
        } catch (err) {
          r.error = `round ${round + 1}: ${err instanceof Error ? err.message : String(err)}`;
        }
      }
    }
  } finally {
    await peer?.close();
  }

  const sec = (r: Runner) => median(r.samplesMs) / 1000;
  const base = runners.find((r) => r.key === 'rnnkit' && !r.error);
  const torchOk = runners.filter((r) => r.key.startsWith('torch') && !r.error && r.samplesMs.length > 0);
  const bestTorch = torchOk.reduce<Runner | undefined>((b, r) => (b === undefined || sec(r) < sec(b) ? r : b), undefined);
  const rows = runners.map((r) => {
    const label = r === bestTorch && torchOk.length > 1 ? `${r.label} (best torch)` : r.label;
    if (r.error || r.samplesMs.length === 0) return [label, `${r.config}; FAILED: ${r.error ?? 'no samples'}`, '—', '—', '—'];
    const t = sec(r);
    const ratio = !base ? '—' : r === base ? '1.00' : fmt3(t / sec(base));
    return [label, `${r.config}; n = ${r.samplesMs.length}`, fmt3(t), fmt3(s.batch / t), ratio];
  });
  console.log('\n| implementation | configuration | median s/step | sequences/s | ratio to rnnkit (s/step ÷ rnnkit s/step) |');
  console.log('|---|---|---:|---:|---:|');
  for (const row of rows) console.log(`| ${row.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`);
  if (bestTorch) console.log(`\nbest torch: ${bestTorch.label}, ${fmt3(sec(bestTorch))} s/step (${torchOk.map((r) => `${r.label} ${fmt3(sec(r))} s`).join(', ')})`);
  console.log(`ratio > 1: rnnkit is faster. Total ${((performance.now() - t0) / 1000).toFixed(1)} s; load at end ${os.loadavg().map((v) => v.toFixed(2)).join(' ')}`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
