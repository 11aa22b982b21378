/**
 * Deterministic layer + input "jobs" shared by test/async.test.ts and its worker
 * (test/helpers/async-worker.ts): the same spec builds bit-identical layers and inputs in any
 * thread, so results computed in a worker can be compared with the main thread's.
 */
import { GRU, LSTM, SimpleRNN, Tensor, type DType, type Recurrent } from '../../lib/index.js';
import { rng, uniform32, uniform64 } from './compare.js';

export type Family = 'rnn_tanh' | 'rnn_relu' | 'lstm' | 'gru_after' | 'gru_before';

export interface JobSpec {
  family: Family;
  B: number;
  T: number;
  I: number;
  H: number;
  dtype: DType;
  returnSequences: boolean;
  goBackwards: boolean;
  initialState: boolean;
  seed: number;
}

export interface Job {
  spec: JobSpec;
  layer: Recurrent;
  x: Tensor;
  initialState?: Tensor[];
  /** Upstream gradients for backward: dOutput and dStates. */
  dOutput: Tensor;
  dStates: Tensor[];
}

export function buildJob(spec: JobSpec): Job {
  const { family, B, T, I, H, dtype } = spec;
  const common = { inputSize: I, units: H, returnSequences: spec.returnSequences, returnState: true, goBackwards: spec.goBackwards, dtype, seed: spec.seed };
  const layer =
    family === 'lstm' ? new LSTM(common)
    : family === 'gru_after' ? new GRU({ ...common, resetAfter: true })
    : family === 'gru_before' ? new GRU({ ...common, resetAfter: false })
    : new SimpleRNN({ ...common, activation: family === 'rnn_relu' ? 'relu' : 'tanh' });
  const r = rng(spec.seed * 7 + 1);
  const arr = (n: number) => (dtype === 'float64' ? uniform64(r, n) : uniform32(r, n));
  const states = family === 'lstm' ? 2 : 1;
  const x = Tensor.from(arr(B * T * I), [B, T, I]);
  const initialState = spec.initialState ? Array.from({ length: states }, () => Tensor.from(arr(B * H), [B, H])) : undefined;
  const dOutput = spec.returnSequences ? Tensor.from(arr(B * T * H), [B, T, H]) : Tensor.from(arr(B * H), [B, H]);
  const dStates = Array.from({ length: states }, () => Tensor.from(arr(B * H), [B, H]));
  return { spec, layer, x, initialState, dOutput, dStates };
}

/** Everything a job produces, as plain typed arrays (structured-clonable). */
export interface JobResult {
  output: Float32Array | Float64Array;
  states: (Float32Array | Float64Array)[];
}

export function resultOf(r: { output: Tensor; states: Tensor[] }): JobResult {
  return { output: r.output.data, states: r.states.map((s) => s.data) };
}

/** A mixed list of specs (families, dtypes, shapes, options) from a seed. */
export function mixedSpecs(count: number, seed: number, big = false): JobSpec[] {
  const r = rng(seed);
  const families: Family[] = ['rnn_tanh', 'rnn_relu', 'lstm', 'gru_after', 'gru_before'];
  return Array.from({ length: count }, (_, k) => {
    // Every fourth job is large enough for the native pool to split its GEMMs across threads.
    const large = big && k % 4 === 0;
    return {
      family: families[k % families.length],
      B: large ? 16 : 1 + r.int(4),
      T: large ? 12 : 1 + r.int(6),
      I: large ? 24 : 1 + r.int(9),
      H: large ? 72 : 1 + r.int(20),
      dtype: k % 3 === 2 ? 'float64' : 'float32',
      returnSequences: r.next() < 0.5,
      goBackwards: r.next() < 0.3,
      initialState: r.next() < 0.5,
      seed: seed * 1000 + k,
    };
  });
}
