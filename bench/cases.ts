// The benchmark cases of DESIGN §7 and their GEMM flop counts.

export type Cell = 'lstm' | 'gru';
/** 'forward': inference. 'train': forward that keeps what backward needs, then backward (BPTT). */
export type Work = 'forward' | 'train';

export interface BenchCase {
  id: string;
  cell: Cell;
  work: Work;
  batch: number;
  steps: number;
  inputSize: number;
  hiddenSize: number;
  /** Stacked layers (each one or two directions). */
  layers: number;
  bidirectional: boolean;
  /** Threads for every implementation in this case; default: the --threads option. */
  threads?: number;
  /** What the case stands for, for the report. */
  title: string;
  /**
   * LSTM variants timed beside the default LSTM of the same case (same weights); their ratio is
   * variant ms / default ms. Cases with variants time rnnkit only.
   */
  variants?: readonly LstmVariantRow[];
  /**
   * Variable lengths (rnnkit only): each sequence's length drawn uniformly from the integers in
   * [ceil(T·minFraction), T] by Random(seed), passed as forward's `lengths`. The case times the
   * native stack with and without them, interleaved.
   */
  lengths?: { minFraction: number; seed: number };
  /** DropoutWrapper options of the timed row (rnnkit only), timed interleaved with the same stack without it. */
  dropout?: DropoutRow;
  /** The case whose rnnkit row this case's extra row is also compared with, when both ran in the same run. */
  relativeTo?: string;
  /** 'eventLoop': concurrent forwardAsync calls with event-loop and memory figures (its own table; see bench.ts). */
  kind?: 'eventLoop';
  /** eventLoop: calls issued at once. */
  concurrentCalls?: number;
}

export interface DropoutRow {
  inputKeepProb: number;
  outputKeepProb: number;
  stateKeepProb: number;
  variationalRecurrent: boolean;
  seed: number;
}

export interface LstmVariantRow {
  key: string;
  label: string;
  options: { peepholes?: boolean; coupledInputForget?: boolean };
}

const base = { layers: 1, bidirectional: false } as const;

export const CASES: readonly BenchCase[] = [
  { id: 'L1', cell: 'lstm', work: 'forward', batch: 64, steps: 100, inputSize: 128, hiddenSize: 256, ...base, title: 'LSTM forward' },
  { id: 'L2', cell: 'lstm', work: 'train', batch: 32, steps: 50, inputSize: 128, hiddenSize: 256, ...base, title: 'LSTM forward+backward' },
  { id: 'L3', cell: 'lstm', work: 'forward', batch: 1, steps: 50, inputSize: 64, hiddenSize: 128, ...base, title: 'LSTM forward (latency)' },
  {
    id: 'L3t1', cell: 'lstm', work: 'forward', batch: 1, steps: 50, inputSize: 64, hiddenSize: 128, ...base, threads: 1,
    title: 'LSTM forward (latency), 1 thread for all',
  },
  { id: 'L4', cell: 'lstm', work: 'forward', batch: 32, steps: 50, inputSize: 1024, hiddenSize: 1024, ...base, title: 'LSTM forward (large)' },
  { id: 'G1', cell: 'gru', work: 'forward', batch: 64, steps: 100, inputSize: 128, hiddenSize: 256, ...base, title: 'GRU forward' },
  { id: 'G2', cell: 'gru', work: 'train', batch: 32, steps: 50, inputSize: 128, hiddenSize: 256, ...base, title: 'GRU forward+backward' },
  {
    id: 'L1v', cell: 'lstm', work: 'forward', batch: 64, steps: 100, inputSize: 128, hiddenSize: 256, ...base,
    title: 'LSTM variants forward (L1 shape): peepholes, CIFG',
    variants: [
      { key: 'rnnkit-peep', label: 'rnnkit (peepholes)', options: { peepholes: true } },
      { key: 'rnnkit-cifg', label: 'rnnkit (CIFG)', options: { coupledInputForget: true } },
    ],
  },
  {
    id: 'D2', cell: 'lstm', work: 'train', batch: 32, steps: 50, inputSize: 128, hiddenSize: 256, layers: 2, bidirectional: true,
    title: '2-layer bidirectional LSTM forward+backward',
  },
  {
    id: 'D2v', cell: 'lstm', work: 'train', batch: 32, steps: 50, inputSize: 128, hiddenSize: 256, layers: 2, bidirectional: true,
    title: 'D2 with variable lengths in [T/4, T] (rnnkit native)',
    lengths: { minFraction: 0.25, seed: 2 },
    relativeTo: 'D2',
  },
  {
    id: 'D2d', cell: 'lstm', work: 'train', batch: 32, steps: 50, inputSize: 128, hiddenSize: 256, layers: 2, bidirectional: true,
    title: 'D2 with DropoutWrapper keep 0.8 (input, output, state; variational)',
    dropout: { inputKeepProb: 0.8, outputKeepProb: 0.8, stateKeepProb: 0.8, variationalRecurrent: true, seed: 1 },
    relativeTo: 'D2',
  },
  {
    id: 'EL', cell: 'lstm', work: 'forward', batch: 4, steps: 16, inputSize: 1024, hiddenSize: 1024, ...base,
    title: '50 concurrent forwardAsync calls, LSTM(1024 → 1024): event loop and memory',
    kind: 'eventLoop',
    concurrentCalls: 50,
  },
];

export function gateCount(cell: Cell): number {
  return cell === 'lstm' ? 4 : 3;
}

export function directions(c: BenchCase): 1 | 2 {
  return c.bidirectional ? 2 : 1;
}

/** Features of the case's output per step: dirs·H (directions concatenated). */
export function outputSize(c: BenchCase): number {
  return directions(c) * c.hiddenSize;
}

/** Input features of layer `l` (0-based): the case's input, then the previous layer's concatenated output. */
export function layerInputSize(c: BenchCase, l: number): number {
  return l === 0 ? c.inputSize : outputSize(c);
}

/**
 * GEMM flops of one call (DESIGN §7): per layer-direction, forward 2·B·T·G·H·(I+H) (input
 * projection plus recurrent product); backward ≈ 2× forward, so forward+backward counts 3×.
 * Element-wise gate math is not counted.
 */
export function gemmFlops(c: BenchCase): number {
  const G = gateCount(c.cell), H = c.hiddenSize, B = c.batch, T = c.steps;
  let forward = 0;
  for (let l = 0; l < c.layers; l++) forward += directions(c) * 2 * B * T * G * H * (layerInputSize(c, l) + H);
  return c.work === 'train' ? 3 * forward : forward;
}

export function describeCase(c: BenchCase): string {
  const shape = `B=${c.batch} T=${c.steps} I=${c.inputSize} H=${c.hiddenSize}`;
  return `${c.id}  ${c.title}  ${shape}  ${(gemmFlops(c) / 1e9).toFixed(3)} GFLOP/call`;
}
