/**
 * rnnkit's main demo: a character-level language model of the King James Bible (public domain;
 * examples/data/kjv.txt.gz, ~1 MB of English made from Debian's bible-kjv package by
 * scripts/make-corpus.py). Embedding → 2-layer LSTM with dropout → Dense, trained with Adam on
 * windows of the first 90% of the text; the last 10% is held out. It prints the validation bits per
 * character next to the unigram baseline (the entropy of the character frequencies alone), a few
 * generated samples, and saves the model.
 *
 *   npm run demo        (node --import tsx examples/char-lm.ts [options])
 *     --epochs 3 --seq-len 64 --batch 64 --units 192 --embed 32 --lr 0.006 --train-chars 400000
 *     --seed 1 --out examples/out/char-lm
 *
 * Exit code 0 when the validation bits per character beat the unigram baseline by at least 1 bit.
 */
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import path from 'node:path';
import fs from 'node:fs';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';

import { Adam, Dense, Embedding, LSTM, Random, Sequential, Tensor, sample } from '../lib/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));

export interface CharLMConfig {
  epochs: number;
  seqLen: number;
  batch: number;
  units: number;
  embed: number;
  lr: number;
  /** Characters of the training part used (from its start). */
  trainChars: number;
  seed: number;
  out: string | undefined;
  verbose: 0 | 1 | 2;
  /** Characters generated per sample. */
  sampleLength: number;
}

export const DEFAULTS: CharLMConfig = {
  epochs: 3, seqLen: 64, batch: 64, units: 192, embed: 32, lr: 0.006, trainChars: 400_000, seed: 1,
  out: path.join(here, 'out', 'char-lm'), verbose: 1, sampleLength: 240,
};

export function loadCorpus(): string {
  return zlib.gunzipSync(fs.readFileSync(path.join(here, 'data', 'kjv.txt.gz'))).toString('utf8');
}

/** Non-overlapping windows of `seqLen` ids and their next-character targets. */
export function windows(ids: Int32Array, seqLen: number): { x: Tensor; y: Tensor } {
  const n = Math.floor((ids.length - 1) / seqLen);
  const x = new Float32Array(n * seqLen), y = new Float32Array(n * seqLen);
  for (let s = 0; s < n; s++) {
    for (let t = 0; t < seqLen; t++) {
      x[s * seqLen + t] = ids[s * seqLen + t];
      y[s * seqLen + t] = ids[s * seqLen + t + 1];
    }
  }
  return { x: Tensor.from(x, [n, seqLen]), y: Tensor.from(y, [n, seqLen]) };
}

/** Cross-entropy in bits of the validation characters under the training part's character frequencies. */
export function unigramBits(train: Int32Array, valid: Int32Array, vocab: number): number {
  const counts = new Float64Array(vocab).fill(1);  // add-one smoothing: every character has some mass
  for (const c of train) counts[c]++;
  const total = counts.reduce((a, b) => a + b, 0);
  let bits = 0;
  for (const c of valid) bits -= Math.log2(counts[c] / total);
  return bits / valid.length;
}

export async function generate(model: Sequential, chars: string[], prime: string, length: number, rng: Random, temperature: number): Promise<string> {
  const index = new Map(chars.map((c, i) => [c, i]));
  model.resetStates();
  let out = prime;
  let logits: Tensor | undefined;
  for (const ch of prime) logits = await model.predictStep(Tensor.from([index.get(ch) ?? 0], [1, 1]));
  for (let i = 0; i < length; i++) {
    const next = sample(logits!.data, { temperature, random: rng });
    out += chars[next];
    logits = await model.predictStep(Tensor.from([next], [1, 1]));
  }
  model.resetStates();
  return out;
}

export async function runCharLM(config: CharLMConfig): Promise<{ bits: number; baseline: number; samples: string[]; seconds: number }> {
  const text = loadCorpus();
  const chars = [...new Set(text)].sort();
  const index = new Map(chars.map((c, i) => [c, i]));
  const ids = Int32Array.from(text, (c) => index.get(c)!);
  const split = Math.floor(ids.length * 0.9);
  const train = ids.subarray(0, Math.min(split, config.trainChars + 1));
  const valid = ids.subarray(split);
  const baseline = unigramBits(ids.subarray(0, split), valid, chars.length);
  const log = (s: string) => config.verbose > 0 && console.log(s);
  log(`corpus: ${text.length.toLocaleString('en-US')} characters, vocabulary ${chars.length}; training on ${train.length.toLocaleString('en-US')}, validating on ${valid.length.toLocaleString('en-US')}`);

  const model = new Sequential([
    new Embedding({ inputDim: chars.length, outputDim: config.embed }),
    new LSTM({ units: config.units, numLayers: 2, dropout: 0.1, returnSequences: true }),
    new Dense({ units: chars.length }),
  ], { seed: config.seed });
  model.compile({
    optimizer: new Adam({ learningRate: config.lr, clipNorm: 5 }),
    loss: { name: 'sparseCategoricalCrossentropy', fromLogits: true },
    metrics: ['bitsPerCharacter', 'accuracy'],
  });
  const t = windows(train, config.seqLen), v = windows(valid, config.seqLen);
  model.build([null]);  // any number of steps: windows in training, one step when generating
  if (config.verbose > 0) model.summary();
  const started = performance.now();
  await model.fit(t.x, t.y, { epochs: config.epochs, batchSize: config.batch, seed: config.seed, validationData: [v.x, v.y], verbose: config.verbose });
  const seconds = (performance.now() - started) / 1000;
  const final = await model.evaluate(v.x, v.y, { batchSize: 256 });
  const bits = final.bitsPerCharacter;
  log(`\nvalidation: ${bits.toFixed(3)} bits per character (unigram baseline ${baseline.toFixed(3)}), accuracy ${(final.accuracy * 100).toFixed(1)}%, trained in ${seconds.toFixed(0)} s`);
  const rng = new Random(config.seed);
  const samples: string[] = [];
  for (const [prime, temperature] of [['And God said', 0.6], ['In the beginning', 0.8], ['Thou shalt', 0.6]] as const) {
    const s = await generate(model, chars, prime, config.sampleLength, rng, temperature);
    samples.push(s);
    log(`\n--- sample (temperature ${temperature}) ---\n${s}`);
  }
  if (config.out) {
    await model.save(config.out);
    log(`\nsaved the model to ${path.relative(process.cwd(), config.out) || config.out} (model.json, model.safetensors, optimizer.safetensors)`);
  }
  return { bits, baseline, samples, seconds };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      epochs: { type: 'string' }, 'seq-len': { type: 'string' }, batch: { type: 'string' }, units: { type: 'string' }, embed: { type: 'string' },
      lr: { type: 'string' }, 'train-chars': { type: 'string' }, seed: { type: 'string' }, out: { type: 'string' },
    },
    strict: true,
  });
  const num = (v: string | undefined, fallback: number, name: string) => {
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) {
      console.error(`--${name}: expected a positive number, got ${v}`);
      process.exit(2);
    }
    return n;
  };
  const config: CharLMConfig = {
    ...DEFAULTS,
    epochs: num(values.epochs, DEFAULTS.epochs, 'epochs'), seqLen: num(values['seq-len'], DEFAULTS.seqLen, 'seq-len'),
    batch: num(values.batch, DEFAULTS.batch, 'batch'), units: num(values.units, DEFAULTS.units, 'units'), embed: num(values.embed, DEFAULTS.embed, 'embed'),
    lr: num(values.lr, DEFAULTS.lr, 'lr'), trainChars: num(values['train-chars'], DEFAULTS.trainChars, 'train-chars'),
    seed: num(values.seed, DEFAULTS.seed, 'seed'), out: values.out ?? DEFAULTS.out,
  };
  const r = await runCharLM(config);
  process.exitCode = r.bits < r.baseline - 1 ? 0 : 1;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
