// Gradient diagnostics for recurrent layers, usable in any training run:
//
//  - stateGradients: the exact ∂L/∂h_t (and ∂L/∂c_t for an LSTM) at every step t, and their norms.
//    The layer API returns dLoss/dInitialState, so the gradient reaching h_t from the future is the
//    initial-state gradient of a one-step forward started from (h_t, c_t) on x_{t+1}, backpropagated
//    with the total gradient of (h_{t+1}, c_{t+1}) as its final-state gradient; ∂L/∂h_t is that plus
//    the direct gradient of the output y_t = h_t. One sweep backwards over t: O(T) native calls.
//  - gateStats: per-gate saturation (fraction of activations within `threshold` of 0 or of 1), and
//    the magnitude of the cell state and of h over time, from the layer's weights (stateDict) and
//    its inputs, computed in JavaScript with the layer's own activations and options.
//  - GradientDiagnostics: a fit() callback recording both on a fixed probe batch.
import { Tensor, type TensorData } from '../tensor.js';
import { checkOptions, optionNames, show } from '../options.js';
import { resolveActivation, type NativeActivation } from '../activations.js';
import { Recurrent, SimpleRNN, LSTM, GRU } from '../layers/recurrent.js';
import { RecurrentBase } from '../layers/base.js';
import { Dense } from '../layers/dense.js';
import { Activation, Dropout, Embedding, RepeatVector, TimeDistributed } from '../layers/shaping.js';
import type { Callback, CallbackModel, Logs } from '../model/callbacks.js';
import type { Loss } from './losses.js';

/** What the diagnostics of one layer need: a single unidirectional layer without projection. */
function checkLayer(layer: unknown, where: string): Recurrent {
  if (!(layer instanceof SimpleRNN || layer instanceof LSTM || layer instanceof GRU)) {
    throw new TypeError(`${where}: layer must be a SimpleRNN, LSTM or GRU, got ${show(layer)}`);
  }
  if (!layer.built) throw new TypeError(`${where}: layer is not built (give it options.inputSize or build it first)`);
  if (layer.numLayers !== 1 || layer.bidirectional) {
    throw new TypeError(`${where}: layer must be one unidirectional layer (numLayers 1, bidirectional false), got numLayers ${layer.numLayers}, bidirectional ${layer.bidirectional}`);
  }
  if (layer.outputSize !== layer.units) throw new TypeError(`${where}: layers with a projection (projSize) are not supported`);
  if (layer.goBackwards) throw new TypeError(`${where}: goBackwards layers are not supported`);
  return layer;
}

/** A copy of `layer` (same weights) that returns its sequence and states, without dropout or state carrying. */
function probeLayer(layer: Recurrent): Recurrent {
  const o = { ...layer.options, returnSequences: true, returnState: true, stateful: false, dropout: 0, recurrentDropout: 0, inputSize: layer.inputSize };
  const copy = layer instanceof LSTM ? new LSTM(o) : layer instanceof GRU ? new GRU(o) : new SimpleRNN(o);
  copy.loadStateDict(layer.stateDict());
  return copy;
}

function checkInput(x: unknown, layer: Recurrent, where: string): Tensor {
  if (!Tensor.isTensor(x) || x.rank !== 3 || x.shape[2] !== layer.inputSize || x.shape[0] < 1 || x.shape[1] < 1) {
    throw new TypeError(`${where}: x must be a Tensor [batch, steps, inputSize=${layer.inputSize}], got ${Tensor.isTensor(x) ? `shape [${x.shape.join(', ')}]` : show(x)}`);
  }
  if (x.dtype !== layer.dtype) throw new TypeError(`${where}: x must have the layer's dtype ${layer.dtype}, got ${x.dtype}`);
  return x;
}

/** Step t of x [B, T, I] as [B, 1, I]. */
function stepOf(x: Tensor, t: number): Tensor {
  const [B, T, I] = x.shape as [number, number, number];
  const out = Tensor.zeros([B, 1, I], x.dtype);
  for (let b = 0; b < B; b++) out.data.set(x.data.subarray((b * T + t) * I, (b * T + t + 1) * I), b * I);
  return out;
}

function norm(d: TensorData): number {
  let s = 0;
  for (let k = 0; k < d.length; k++) s += d[k] * d[k];
  return Math.sqrt(s);
}

export interface StateGradientsOptions {
  /** Initial states ([h0] or [h0, c0], each [batch, units]); default zeros. */
  initialState?: Tensor[];
  /** Gradients of the final states ([dh_T] or [dh_T, dc_T]), when the loss reads them. */
  dStates?: (Tensor | null | undefined)[];
}
const STATE_GRADIENTS_OPTIONS = optionNames<StateGradientsOptions>({ initialState: true, dStates: true });

export interface StateGradients {
  /** ‖∂L/∂h_t‖ for t = 0 … T−1 (Frobenius norm over batch and units). */
  norms: Float64Array;
  /** ∂L/∂h_t, each [batch, units]. */
  dh: Tensor[];
  /** LSTM: ‖∂L/∂c_t‖ and ∂L/∂c_t (c_t held as the other state); absent for SimpleRNN and GRU. */
  cellNorms?: Float64Array;
  dc?: Tensor[];
}

/**
 * The exact gradient of a loss with respect to the hidden state h_t at every step of a forward of
 * `layer` on x [batch, steps, inputSize]. `dOutput` is dLoss/dOutput as layer.backward takes it:
 * [batch, steps, units] for a layer with returnSequences, else [batch, units] for its last output
 * (null when only options.dStates carry gradient). h_t is the state after reading x_t; ∂L/∂h_t
 * counts every path from h_t to the loss (the output y_t = h_t and all later steps).
 *
 * The FGR variant (fullGateRecurrence) is refused: its previous-step gates are a third state the
 * layer API does not take as an initial state.
 */
export function stateGradients(layer: Recurrent, x: Tensor, dOutput: Tensor | null, options: StateGradientsOptions = {}): StateGradients {
  const where = 'stateGradients';
  const l = checkLayer(layer, where);
  checkOptions(options, `${where}: options`, STATE_GRADIENTS_OPTIONS);
  if (l instanceof LSTM && l.features().fullGateRecurrence) {
    throw new TypeError(`${where}: FGR LSTMs (fullGateRecurrence) are not supported: the previous step's gates are state the layer API does not expose`);
  }
  checkInput(x, l, where);
  const [B, T] = x.shape as [number, number, number];
  const H = l.units;
  const two = l instanceof LSTM;
  const probe = probeLayer(l);
  let dSeq: TensorData | undefined, dLast: TensorData | undefined;
  if (dOutput !== null && dOutput !== undefined) {
    const expected = l.returnSequences ? [B, T, H] : [B, H];
    if (!Tensor.isTensor(dOutput) || dOutput.rank !== expected.length || dOutput.shape.some((d, i) => d !== expected[i])) {
      throw new TypeError(`${where}: dOutput must be a Tensor [${l.returnSequences ? `batch=${B}, steps=${T}, units=${H}` : `batch=${B}, units=${H}`}] (the layer's output shape), got ${Tensor.isTensor(dOutput) ? `shape [${dOutput.shape.join(', ')}]` : show(dOutput)}`);
    }
    if (l.returnSequences) dSeq = dOutput.data;
    else dLast = dOutput.data;
  }
  // States after every step (the same arithmetic as one forward over the whole sequence).
  const hs: Tensor[] = [], cs: Tensor[] = [];
  let state: Tensor[] = options.initialState ?? (two ? [Tensor.zeros([B, H], l.dtype), Tensor.zeros([B, H], l.dtype)] : [Tensor.zeros([B, H], l.dtype)]);
  const starts: Tensor[][] = [];
  for (let t = 0; t < T; t++) {
    starts.push(state);
    state = probe.forward(stepOf(x, t), { initialState: state }).states;
    hs.push(state[0]);
    if (two) cs.push(state[1]);
  }
  // Total gradients of (h_t, c_t), from the last step back.
  const dhT = Tensor.zeros([B, H], l.dtype), dcT = Tensor.zeros([B, H], l.dtype);
  const ds = options.dStates;
  if (ds !== undefined) {
    if (!Array.isArray(ds) || ds.length > (two ? 2 : 1)) throw new TypeError(`${where}: options.dStates must be an array of at most ${two ? 2 : 1} Tensor(s) [batch=${B}, units=${H}]`);
    ds.forEach((d, i) => {
      if (d === null || d === undefined) return;
      if (!Tensor.isTensor(d) || d.rank !== 2 || d.shape[0] !== B || d.shape[1] !== H) throw new TypeError(`${where}: options.dStates[${i}] must be a Tensor [batch=${B}, units=${H}]`);
      (i === 0 ? dhT : dcT).data.set(d.data);
    });
  }
  if (dLast) for (let k = 0; k < B * H; k++) dhT.data[k] += dLast[k];
  const addDirect = (g: Tensor, t: number): void => {
    if (!dSeq) return;
    for (let b = 0; b < B; b++) for (let j = 0; j < H; j++) g.data[b * H + j] += dSeq[(b * T + t) * H + j];
  };
  const dh: Tensor[] = new Array(T), dc: Tensor[] = new Array(T);
  addDirect(dhT, T - 1);
  dh[T - 1] = dhT;
  dc[T - 1] = dcT;
  for (let t = T - 2; t >= 0; t--) {
    const r = probe.forward(stepOf(x, t + 1), { initialState: [hs[t], ...(two ? [cs[t]] : [])], training: true });
    const g = probe.backward(r.run!, null, { dStates: two ? [dh[t + 1], dc[t + 1]] : [dh[t + 1]] });
    r.run!.release();
    const gh = Tensor.from(g.initialState[0].data.slice(), [B, H]);
    addDirect(gh, t);
    dh[t] = gh;
    if (two) dc[t] = Tensor.from(g.initialState[1].data.slice(), [B, H]);
  }
  const out: StateGradients = { norms: Float64Array.from(dh, (g) => norm(g.data)), dh };
  if (two) {
    out.dc = dc;
    out.cellNorms = Float64Array.from(dc, (g) => norm(g.data));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Gate activations in JavaScript

function activationFn(a: NativeActivation): (v: number) => number {
  const { alpha, beta } = a;
  switch (a.name) {
    case 'Sigmoid': return (v) => 1 / (1 + Math.exp(-v));
    case 'Tanh': return Math.tanh;
    case 'Relu': return (v) => (v > 0 ? v : 0);
    case 'HardSigmoid': return (v) => Math.max(0, Math.min(1, alpha * v + beta));
    case 'Affine': return (v) => alpha * v + beta;
    case 'LeakyRelu': return (v) => (v >= 0 ? v : alpha * v);
    case 'ThresholdedRelu': return (v) => (v > alpha ? v : 0);
    case 'ScaledTanh': return (v) => alpha * Math.tanh(beta * v);
    case 'Elu': return (v) => (v >= 0 ? v : alpha * (Math.exp(v) - 1));
    case 'Softsign': return (v) => v / (1 + Math.abs(v));
    case 'Softplus': return (v) => Math.log1p(Math.exp(v));
    default: throw new TypeError(`gateStats: activation ${a.name} is not supported`);
  }
}

export interface GateSaturation {
  /** 'i', 'f', 'o' (LSTM), 'r', 'z' (GRU). */
  gate: string;
  /** Fraction of the gate's activations (over batch, units and steps) below `threshold`. */
  nearZero: number;
  /** Fraction above 1 − threshold. */
  nearOne: number;
  /** nearZero + nearOne at each step. */
  perStep: Float64Array;
}

export interface GateStats {
  /** The gates the cell computes (a gate the variant removes, e.g. NFG's f, is absent; CIFG's f = 1 − i is listed). */
  gates: GateSaturation[];
  /** Mean over the batch of ‖c_t‖ / √units (RMS of the cell state) per step; LSTM only. */
  cellNorm?: Float64Array;
  /** Mean over the batch of max_j |c_t,j| per step; LSTM only. */
  cellMax?: Float64Array;
  /** Mean over the batch of ‖h_t‖ / √units per step. */
  hiddenNorm: Float64Array;
  /** h_t as this computation found it, [batch, steps, units] (float64), to compare with the layer's forward. */
  hidden: Tensor;
}

export interface GateStatsOptions {
  /** An activation within this of 0 or 1 counts as saturated (default 0.05). */
  threshold?: number;
  /** Initial states ([h0] or [h0, c0], each [batch, units]); default zeros. */
  initialState?: Tensor[];
}
const GATE_STATS_OPTIONS = optionNames<GateStatsOptions>({ threshold: true, initialState: true });

/**
 * Runs `layer` on x [batch, steps, inputSize] in JavaScript (float64) from its stateDict and options
 * and reports, for each gate, how often it saturates, and the RMS magnitude of c_t and h_t over time.
 * A SimpleRNN has no gates (only hiddenNorm).
 */
export function gateStats(layer: Recurrent, x: Tensor, options: GateStatsOptions = {}): GateStats {
  const where = 'gateStats';
  const l = checkLayer(layer, where);
  checkOptions(options, `${where}: options`, GATE_STATS_OPTIONS);
  const threshold = options.threshold ?? 0.05;
  if (typeof threshold !== 'number' || !(threshold > 0 && threshold < 0.5)) throw new RangeError(`${where}: options.threshold: expected a number in (0, 0.5), got ${show(threshold)}`);
  checkInput(x, l, where);
  const [B, T, I] = x.shape as [number, number, number];
  const H = l.units;
  const f = l.features();
  const sd = l.stateDict();
  const W = sd.weight_ih_l0.data, R = sd.weight_hh_l0.data;
  const bI = sd.bias_ih_l0?.data, bH = sd.bias_hh_l0?.data;
  const clip = l.clip;
  const clamp = (v: number): number => (clip > 0 ? Math.max(-clip, Math.min(clip, v)) : v);
  const isLstm = l instanceof LSTM, isGru = l instanceof GRU;
  const G = isLstm ? 4 : isGru ? 3 : 1;
  const gateAct = activationFn(isLstm || isGru ? f.gateActivation! : { name: 'Sigmoid', alpha: 0, beta: 0 });
  const candAct = activationFn(f.candidateActivation ?? resolveActivation('tanh', 'activation'));
  const outAct = activationFn(f.outputActivation ?? resolveActivation('tanh', 'activation'));
  const names = isLstm
    ? ['i', 'f', 'o'].filter((g) => !(g === 'i' && f.noInputGate) && !(g === 'f' && f.noForgetGate) && !(g === 'o' && f.noOutputGate))
    : isGru ? ['r', 'z'] : [];
  const low = new Map(names.map((n) => [n, 0])), high = new Map(names.map((n) => [n, 0]));
  const per = new Map(names.map((n) => [n, new Float64Array(T)]));
  const count = (n: string, v: number, t: number): void => {
    if (!per.has(n)) return;
    if (v < threshold) low.set(n, low.get(n)! + 1);
    if (v > 1 - threshold) high.set(n, high.get(n)! + 1);
    if (v < threshold || v > 1 - threshold) per.get(n)![t] += 1 / (B * H);
  };
  const peep = sd.weight_peephole_l0?.data, gr = sd.weight_gr_l0?.data;
  const cellNorm = new Float64Array(T), cellMax = new Float64Array(T), hiddenNorm = new Float64Array(T);
  const hidden = Tensor.zeros([B, T, H], 'float64');
  const a = new Float64Array(G * H), rh = new Float64Array(G * H);
  for (let b = 0; b < B; b++) {
    const h = new Float64Array(H), c = new Float64Array(H);
    if (options.initialState) {
      h.set(options.initialState[0].data.subarray(b * H, (b + 1) * H));
      if (isLstm && options.initialState[1]) c.set(options.initialState[1].data.subarray(b * H, (b + 1) * H));
    }
    let prevActs = new Float64Array(3 * H);  // FGR: i, f, o of the previous step (zeros before the first)
    for (let t = 0; t < T; t++) {
      const xt = x.data.subarray((b * T + t) * I, (b * T + t + 1) * I);
      for (let r = 0; r < G * H; r++) {
        let s = bI ? bI[r] : 0, u = bH ? bH[r] : 0;
        for (let k = 0; k < I; k++) s += W[r * I + k] * xt[k];
        for (let k = 0; k < H; k++) u += R[r * H + k] * h[k];
        a[r] = s;
        rh[r] = u;
      }
      if (isLstm) {
        const acts = new Float64Array(3 * H);
        for (let j = 0; j < H; j++) {
          let ai = a[j] + rh[j], af = a[H + j] + rh[H + j], ao = a[3 * H + j] + rh[3 * H + j];
          const ag = a[2 * H + j] + rh[2 * H + j];
          if (gr) {
            for (let k = 0; k < 3 * H; k++) {
              ai += gr[j * 3 * H + k] * prevActs[k];
              af += gr[(H + j) * 3 * H + k] * prevActs[k];
              ao += gr[(2 * H + j) * 3 * H + k] * prevActs[k];
            }
          }
          if (peep) {
            ai += peep[j] * c[j];
            af += peep[H + j] * c[j];
          }
          const iv = f.noInputGate ? 1 : gateAct(clamp(ai));
          const fv = f.noForgetGate ? 1 : f.coupledInputForget ? 1 - iv : gateAct(clamp(af));
          const g = candAct(clamp(ag));
          let cn = g * iv + c[j] * fv;
          if (f.cellClip > 0) cn = Math.max(-f.cellClip, Math.min(f.cellClip, cn));
          if (peep) ao += peep[2 * H + j] * cn;
          const ov = f.noOutputGate ? 1 : gateAct(clamp(ao));
          c[j] = cn;
          h[j] = ov * outAct(cn);
          count('i', iv, t);
          count('f', fv, t);
          count('o', ov, t);
          acts[j] = iv;
          acts[H + j] = fv;
          acts[2 * H + j] = ov;
        }
        prevActs = acts;
      } else if (isGru) {
        const hPrev = h.slice();
        const rs = Float64Array.from({ length: H }, (_, j) => gateAct(clamp(a[j] + rh[j])));
        for (let j = 0; j < H; j++) {
          const rv = rs[j], zv = gateAct(clamp(a[H + j] + rh[H + j]));
          let n: number;
          if (f.linearBeforeReset) {
            n = candAct(clamp(a[2 * H + j] + rv * rh[2 * H + j]));
          } else {
            // n = act(W_n x + b_in + R_n (r ⊙ h) + b_hn): R_n applied to the reset state.
            let u = bH ? bH[2 * H + j] : 0;
            for (let k = 0; k < H; k++) u += R[(2 * H + j) * H + k] * rs[k] * hPrev[k];
            n = candAct(clamp(a[2 * H + j] + u));
          }
          h[j] = (1 - zv) * n + zv * hPrev[j];
          count('r', rv, t);
          count('z', zv, t);
        }
      } else {
        for (let j = 0; j < H; j++) h[j] = candAct(clamp(a[j] + rh[j]));
      }
      let hn = 0, cn2 = 0, cm = 0;
      for (let j = 0; j < H; j++) {
        hn += h[j] * h[j];
        cn2 += c[j] * c[j];
        cm = Math.max(cm, Math.abs(c[j]));
      }
      hidden.data.set(h, (b * T + t) * H);
      hiddenNorm[t] += Math.sqrt(hn / H) / B;
      cellNorm[t] += Math.sqrt(cn2 / H) / B;
      cellMax[t] += cm / B;
    }
  }
  const n = B * T * H;
  const out: GateStats = {
    gates: names.map((g) => ({ gate: g, nearZero: low.get(g)! / n, nearOne: high.get(g)! / n, perStep: per.get(g)! })),
    hiddenNorm,
    hidden,
  };
  if (isLstm) {
    out.cellNorm = cellNorm;
    out.cellMax = cellMax;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Through a model: the gradient of the model's loss at a recurrent layer's output

type AnyLayer = CallbackModel & { layers: readonly unknown[]; loss: Loss | undefined };

/** The rows the loss reads (as Sequential.fit): prediction [rows, C] and its targets. */
function lossTargets(pred: Tensor, y: Tensor, loss: Loss): Int32Array | Tensor {
  const C = pred.shape[pred.rank - 1], rows = pred.size / C;
  if (loss.targetKind === 'sparse') return Int32Array.from(y.data.subarray(0, rows));
  return Tensor.from(pred.dtype === y.dtype ? y.data : pred.dtype === 'float64' ? Float64Array.from(y.data) : Float32Array.from(y.data), [rows, C]);
}

/**
 * For a Sequential compiled with a loss: the input of its recurrent layer `index` on x, and the
 * gradient of the model's loss on (x, y) with respect to that layer's output (inference mode:
 * dropout off). Layers before it may be Embedding, Dense, TimeDistributed, Dropout and Activation;
 * after it Dense, TimeDistributed, Dropout, Activation and RepeatVector.
 */
export function outputGradient(model: AnyLayer, index: number, x: Tensor, y: Tensor): { input: Tensor; dOutput: Tensor; loss: number } {
  const where = 'outputGradient';
  const loss = model.loss;
  if (!loss) throw new TypeError(`${where}: the model must be compiled with a loss`);
  const layers = model.layers;
  const rec = layers[index];
  if (!(rec instanceof RecurrentBase)) throw new TypeError(`${where}: layer ${index} is not a recurrent layer`);
  let h: Tensor = x;
  for (let i = 0; i < index; i++) {
    const l = layers[i];
    if (l instanceof Embedding || l instanceof Dense || l instanceof Activation) h = l.forward(h).output;
    else if (l instanceof TimeDistributed) h = l.layer.forward(h).output;
    else if (l instanceof Dropout) continue;
    else throw new TypeError(`${where}: layer ${i} (${(l as { className?: string }).className ?? show(l)}) before the recurrent layer is not supported`);
  }
  const input = h;
  const last = layers.length - 1;
  const lastDense = layers[last] instanceof TimeDistributed ? (layers[last] as TimeDistributed).layer : layers[last];
  const categorical = loss.name === 'sparseCategoricalCrossentropy' || loss.name === 'categoricalCrossentropy';
  const fused = categorical && loss.fromLogits &&
    ((lastDense instanceof Dense && lastDense.activation === 'softmax') || (layers[last] instanceof Activation && (layers[last] as Activation).activation === 'softmax'));
  h = rec.forward(h).output;
  const back: ((d: Tensor) => Tensor)[] = [];
  for (let i = index + 1; i <= last; i++) {
    const l = layers[i];
    if (l instanceof Dense || l instanceof TimeDistributed) {
      const d = l instanceof Dense ? l : l.layer;
      const r = fused && i === last ? d.forwardLogits(h, { training: true }) : d.forward(h, { training: true });
      h = r.output;
      back.push((g) => d.backward(r.run!, g).input);
    } else if (l instanceof Activation) {
      if (fused && i === last) continue;
      const r = l.forward(h, { training: true });
      h = r.output;
      back.push((g) => l.backward(r.run!, g).input);
    } else if (l instanceof RepeatVector) {
      h = l.forward(h).output;
      back.push((g) => l.backward(g).input);
    } else if (l instanceof Dropout) {
      continue;
    } else {
      throw new TypeError(`${where}: layer ${i} (${(l as { className?: string }).className ?? show(l)}) after the recurrent layer is not supported`);
    }
  }
  const C = h.shape[h.rank - 1];
  const r = loss.compute(Tensor.from(h.data, [h.size / C, C]), lossTargets(h, y, loss));
  let d = Tensor.from(r.grad.data, h.shape);
  for (let k = back.length - 1; k >= 0; k--) d = back[k](d);
  return { input, dOutput: d, loss: r.loss };
}

export interface GradientDiagnosticsOptions {
  /** Probe inputs and targets (a fixed batch, e.g. a slice of the validation data). */
  x: Tensor;
  y: Tensor;
  /** Index of the recurrent layer in the model (default: the first recurrent layer). */
  layer?: number;
  /** Record every this many epochs (default 1), also before training (epoch −1). */
  every?: number;
  /** Also record every this many batches (default 0: only at epoch ends). */
  everyBatches?: number;
  /** Saturation threshold of gateStats (default 0.05). */
  threshold?: number;
}
const DIAGNOSTICS_OPTIONS = optionNames<GradientDiagnosticsOptions>({ x: true, y: true, layer: true, every: true, everyBatches: true, threshold: true });

export interface DiagnosticsRecord {
  /** −1 before training, else the epoch that just ended. */
  epoch: number;
  /** The batch within the epoch (−1 at epoch ends). */
  batch: number;
  /** The model's loss on the probe batch. */
  loss: number;
  /** ‖∂L/∂h_t‖ per step t (see stateGradients). */
  stateGradientNorms: number[];
  /** LSTM: ‖∂L/∂c_t‖ per step. */
  cellGradientNorms?: number[];
  gates: { gate: string; nearZero: number; nearOne: number }[];
  cellNorm?: number[];
  hiddenNorm: number[];
}

/**
 * A fit() callback recording, on a fixed probe batch, the per-step gradient norms ‖∂L/∂h_t‖, the
 * per-gate saturation and the magnitude of the states over time, before training and after every
 * `every` epochs (and every `everyBatches` batches when set). The records are in `records`.
 */
export class GradientDiagnostics implements Callback {
  readonly records: DiagnosticsRecord[] = [];
  private model: AnyLayer | undefined;
  private readonly options: Required<Omit<GradientDiagnosticsOptions, 'layer'>> & { layer: number | undefined };

  constructor(options: GradientDiagnosticsOptions) {
    const where = 'GradientDiagnostics: options';
    checkOptions(options, where, DIAGNOSTICS_OPTIONS);
    if (!Tensor.isTensor(options.x) || !Tensor.isTensor(options.y)) throw new TypeError(`${where}: x and y must be Tensors (a probe batch)`);
    const int = (v: unknown, name: string, fallback: number, min: number): number => {
      if (v === undefined) return fallback;
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new RangeError(`${where}.${name}: expected an integer >= ${min}, got ${show(v)}`);
      return v;
    };
    this.options = {
      x: options.x, y: options.y,
      layer: options.layer === undefined ? undefined : int(options.layer, 'layer', 0, 0),
      every: int(options.every, 'every', 1, 1),
      everyBatches: int(options.everyBatches, 'everyBatches', 0, 0),
      threshold: options.threshold ?? 0.05,
    };
  }

  setModel(model: CallbackModel): void {
    const m = model as AnyLayer;
    if (!Array.isArray(m.layers)) throw new TypeError('GradientDiagnostics: the model has no layers');
    this.model = m;
  }

  /** Computes one record now (fit calls it; usable by hand after setModel). */
  record(epoch: number, batch: number): DiagnosticsRecord {
    const m = this.model;
    if (!m) throw new TypeError('GradientDiagnostics.record: no model (fit calls setModel)');
    const index = this.options.layer ?? m.layers.findIndex((l) => l instanceof RecurrentBase);
    if (index < 0) throw new TypeError('GradientDiagnostics: the model has no recurrent layer');
    const layer = checkLayer(m.layers[index], 'GradientDiagnostics');
    const { input, dOutput, loss } = outputGradient(m, index, this.options.x, this.options.y);
    const g = stateGradients(layer, input, dOutput);
    const s = gateStats(layer, input, { threshold: this.options.threshold });
    const rec: DiagnosticsRecord = {
      epoch, batch, loss,
      stateGradientNorms: [...g.norms],
      gates: s.gates.map(({ gate, nearZero, nearOne }) => ({ gate, nearZero, nearOne })),
      hiddenNorm: [...s.hiddenNorm],
    };
    if (g.cellNorms) rec.cellGradientNorms = [...g.cellNorms];
    if (s.cellNorm) rec.cellNorm = [...s.cellNorm];
    this.records.push(rec);
    return rec;
  }

  onTrainBegin(_logs: Logs): void {
    this.record(-1, -1);
  }
  onBatchEnd(batch: number, _logs: Logs): void {
    if (this.options.everyBatches > 0 && (batch + 1) % this.options.everyBatches === 0) this.record(this.epoch, batch);
  }
  private epoch = 0;
  onEpochBegin(epoch: number): void {
    this.epoch = epoch;
  }
  onEpochEnd(epoch: number, _logs: Logs): void {
    if ((epoch + 1) % this.options.every === 0) this.record(epoch, -1);
  }
}
