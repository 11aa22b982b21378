/**
 * Encoder–decoder (sequence → sequence of another alignment): reverse digit strings, written with
 * the layer API rather than Sequential so the encoder's final [h, c] can seed the decoder.
 * Encoder LSTM(returnState) over one-hot digits; decoder LSTM(returnSequences) over one-hot
 * [GO, y1, …, y_{T-1}] (teacher forcing) starting from the encoder's states; Dense(10) on every
 * decoder step. Gradients flow dense → decoder → (initial states) → encoder; Adam steps all three.
 * At test time decoding is greedy: the decoder is re-run on its own outputs so far (strings are short).
 * Training strings have lengths 3–6; the held-out test strings (lengths 4–5) never occur in training.
 *
 *   node --import tsx examples/seq2seq-reverse.ts
 *
 * Exit code 0 when the exact-match accuracy on the held-out strings is above 0.5.
 */
import { pathToFileURL } from 'node:url';

import { Adam, Dense, LSTM, Random, Tensor, getLoss } from '../lib/index.js';

export interface Seq2SeqConfig {
  steps: number; batch: number; units: number; lr: number; test: number;
  minLen: number; maxLen: number; seed: number; verbose: 0 | 1;
}

export const DEFAULTS: Seq2SeqConfig = {
  steps: 3000, batch: 32, units: 64, lr: 0.01, test: 300, minLen: 3, maxLen: 6, seed: 1, verbose: 1,
};

const V = 10, GO = 10;

function oneHot(seqs: number[][], width: number): Tensor {
  const B = seqs.length, L = seqs[0].length;
  const x = new Float32Array(B * L * width);
  for (let b = 0; b < B; b++) for (let t = 0; t < L; t++) x[(b * L + t) * width + seqs[b][t]] = 1;
  return Tensor.from(x, [B, L, width]);
}

export class Reverser {
  readonly enc: LSTM;
  readonly dec: LSTM;
  readonly out: Dense;
  constructor(units: number, seed: number) {
    this.enc = new LSTM({ inputSize: V, units, returnState: true, seed });
    this.dec = new LSTM({ inputSize: V + 1, units, returnSequences: true, seed: seed + 1 });
    this.out = new Dense({ inputSize: units, units: V, seed: seed + 2 });
  }

  params(): Record<string, Tensor> {
    const p: Record<string, Tensor> = {};
    for (const [prefix, layer] of [['enc.', this.enc], ['dec.', this.dec], ['out.', this.out]] as const) {
      for (const [k, t] of Object.entries(layer.stateDict())) p[prefix + k] = t;
    }
    return p;
  }

  /** One teacher-forced step on a batch of equal-length strings; returns the loss and the gradients. */
  lossAndGrads(src: number[][]): { loss: number; grads: Record<string, Tensor> } {
    const B = src.length, L = src[0].length;
    const tgt = src.map((s) => [...s].reverse());
    const decIn = tgt.map((s) => [GO, ...s.slice(0, L - 1)]);
    const e = this.enc.forward(oneHot(src, V), { training: true });
    const d = this.dec.forward(oneHot(decIn, V + 1), { training: true, initialState: e.states });
    const o = this.out.forward(d.output, { training: true });
    const targets = Int32Array.from(tgt.flat());
    const { loss, grad } = getLoss({ name: 'sparseCategoricalCrossentropy', fromLogits: true })
      .compute(Tensor.from(o.output.data as Float32Array, [B * L, V]), targets);
    const gOut = this.out.backward(o.run!, Tensor.from(grad.data as Float32Array, [B, L, V]));
    const gDec = this.dec.backward(d.run!, gOut.input);
    const gEnc = this.enc.backward(e.run!, null, { dStates: gDec.initialState });
    const grads: Record<string, Tensor> = {};
    for (const [prefix, g] of [['enc.', gEnc.params], ['dec.', gDec.params], ['out.', gOut.params]] as const) {
      for (const [k, t] of Object.entries(g)) grads[prefix + k] = t;
    }
    return { loss, grads };
  }

  /** Greedy decoding of a batch of equal-length strings. */
  reverse(src: number[][]): number[][] {
    const B = src.length, L = src[0].length;
    const { states } = this.enc.forward(oneHot(src, V));
    const outs: number[][] = src.map(() => []);
    for (let k = 0; k < L; k++) {
      const prefix = outs.map((o) => [GO, ...o]);
      const h = this.dec.forward(oneHot(prefix, V + 1), { initialState: states }).output;
      const logits = this.out.forward(h).output.data;
      for (let b = 0; b < B; b++) {
        const base = (b * (k + 1) + k) * V;
        let best = 0;
        for (let j = 1; j < V; j++) if (logits[base + j] > logits[base + best]) best = j;
        outs[b].push(best);
      }
    }
    return outs;
  }
}

export async function run(config: Partial<Seq2SeqConfig> = {}): Promise<{ exactMatch: number; perDigit: number; loss: number; examples: string[] }> {
  const c = { ...DEFAULTS, ...config };
  const log = (s: string) => c.verbose > 0 && console.log(s);
  const rng = new Random(c.seed);
  const randomString = (len: number) => Array.from({ length: len }, () => rng.int(V));
  // Held-out test strings (lengths 4 and 5), excluded from training.
  const held = new Set<string>();
  const testSets: number[][][] = [[], []];
  while (testSets[0].length + testSets[1].length < c.test) {
    const len = 4 + (testSets[0].length + testSets[1].length) % 2;
    const s = randomString(len);
    if (held.has(s.join(''))) continue;
    held.add(s.join(''));
    testSets[len - 4].push(s);
  }
  const model = new Reverser(c.units, c.seed);
  const opt = new Adam({ learningRate: c.lr, clipNorm: 5 });
  const params = model.params();
  let recent = 0;
  for (let step = 1; step <= c.steps; step++) {
    const len = c.minLen + rng.int(c.maxLen - c.minLen + 1);
    const batch: number[][] = [];
    while (batch.length < c.batch) {
      const s = randomString(len);
      if (!held.has(s.join(''))) batch.push(s);
    }
    const { loss, grads } = model.lossAndGrads(batch);
    opt.step(params, grads);
    recent = step === 1 ? loss : 0.95 * recent + 0.05 * loss;
    if (c.verbose > 0 && step % 250 === 0) log(`step ${step}: loss ${recent.toFixed(4)}`);
  }
  let exact = 0, digits = 0, total = 0, n = 0;
  const examples: string[] = [];
  for (const set of testSets) {
    if (set.length === 0) continue;
    const outs = model.reverse(set);
    set.forEach((s, i) => {
      const want = [...s].reverse();
      const ok = want.every((d, t) => d === outs[i][t]);
      exact += ok ? 1 : 0;
      n++;
      want.forEach((d, t) => { digits += d === outs[i][t] ? 1 : 0; total++; });
      if (i < 4) examples.push(`${s.join('')} → ${outs[i].join('')} ${ok ? '✓' : '✗'}`);
    });
  }
  for (const e of examples) log(e);
  const result = { exactMatch: exact / n, perDigit: digits / total, loss: recent, examples };
  log(`held-out strings of length 4–5: exact match ${(result.exactMatch * 100).toFixed(1)}%, per digit ${(result.perDigit * 100).toFixed(1)}%`);
  return result;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  run().then((r) => { process.exitCode = r.exactMatch > 0.5 ? 0 : 1; }, (err) => { console.error(err); process.exit(1); });
}
