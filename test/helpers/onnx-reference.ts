/**
 * Plain float64 references, written straight from the equations, for checking onnxruntime and
 * the weight-layout converters of ./onnx.ts.
 *
 * onnxReference: the ONNX RNN / LSTM / GRU operators (layout 0, no sequence_lens), same inputs as
 * an {@link OnnxRnnSpec}. Where the ONNX text is ambiguous it follows onnxruntime's CPU kernels:
 *  - `clip` bounds the input of every gate activation, but the LSTM cell state Ct is passed to
 *    h() unclipped (and Y_c is unclipped);
 *  - activation_alpha / activation_beta are consumed in order by the activations that take them
 *    (defaults of the corresponding ONNX operators when the list runs out; Affine and ScaledTanh
 *    have no defaults and must be given explicitly).
 * Known onnxruntime deviation (not modelled): LSTM/GRU use alpha 0, not 1, for ThresholdedRelu
 * when no alpha is given. Also note that onnxruntime's RNN kernel only accepts activation names
 * in their canonical spelling ('Tanh'), while LSTM/GRU accept any case.
 *
 * torchReference: PyTorch's nn.RNN(tanh) / nn.LSTM / nn.GRU equations for one direction, with the
 * weights in PyTorch layout and gate order (LSTM i,f,g,o ; GRU r,z,n).
 */
import { onnxGateCount, onnxNumDirections } from './onnx.js';
import type { OnnxCell, OnnxRnnSpec, TorchRnnWeights } from './onnx.js';

type Numbers = ArrayLike<number>;
type Activation = (x: number) => number;

export interface OnnxReferenceResult {
  /** [T, dirs, N, H] */
  Y: Float64Array;
  /** [dirs, N, H] */
  Y_h: Float64Array;
  /** [dirs, N, H], LSTM only */
  Y_c?: Float64Array;
}

const sigmoid: Activation = (x) => 1 / (1 + Math.exp(-x));

/** name (lower case) -> [needs alpha, needs beta, default alpha, default beta] */
const ACTIVATION_PARAMS: Record<string, readonly [boolean, boolean, number | undefined, number | undefined]> = {
  relu: [false, false, undefined, undefined],
  tanh: [false, false, undefined, undefined],
  sigmoid: [false, false, undefined, undefined],
  softsign: [false, false, undefined, undefined],
  softplus: [false, false, undefined, undefined],
  affine: [true, true, undefined, undefined],
  scaledtanh: [true, true, undefined, undefined],
  leakyrelu: [true, false, 0.01, undefined],
  thresholdedrelu: [true, false, 1.0, undefined],
  elu: [true, false, 1.0, undefined],
  hardsigmoid: [true, true, 0.2, 0.5],
};

function activationFunction(name: string, a: number, b: number): Activation {
  switch (name) {
    case 'relu':
      return (x) => Math.max(0, x);
    case 'tanh':
      return Math.tanh;
    case 'sigmoid':
      return sigmoid;
    case 'softsign':
      return (x) => x / (1 + Math.abs(x));
    case 'softplus':
      return (x) => Math.log1p(Math.exp(x));
    case 'affine':
      return (x) => a * x + b;
    case 'scaledtanh':
      return (x) => a * Math.tanh(b * x);
    case 'leakyrelu':
      return (x) => (x >= 0 ? x : a * x);
    case 'thresholdedrelu':
      return (x) => (x > a ? x : 0);
    case 'elu':
      return (x) => (x >= 0 ? x : a * Math.expm1(x));
    case 'hardsigmoid':
      return (x) => Math.max(0, Math.min(1, a * x + b));
    default:
      throw new Error(`unsupported activation ${name}`);
  }
}

const DEFAULT_ACTIVATIONS: Record<OnnxCell, readonly string[]> = {
  RNN: ['Tanh'],
  LSTM: ['Sigmoid', 'Tanh', 'Tanh'],
  GRU: ['Sigmoid', 'Tanh'],
};

/** The activation functions of each direction: [dirs][f, g, h...]. */
function resolveActivations(spec: OnnxRnnSpec, dirs: number): Activation[][] {
  const perDirection = DEFAULT_ACTIVATIONS[spec.op].length;
  const names = spec.activations ?? Array.from({ length: dirs }, () => DEFAULT_ACTIVATIONS[spec.op]).flat();
  if (names.length !== perDirection * dirs) {
    throw new Error(`${spec.op} needs ${perDirection * dirs} activations, got ${names.length}`);
  }
  const alphas = spec.activationAlpha ?? [];
  const betas = spec.activationBeta ?? [];
  let nextAlpha = 0;
  let nextBeta = 0;
  const fns = names.map((raw) => {
    const name = raw.toLowerCase();
    const params = ACTIVATION_PARAMS[name];
    if (params === undefined) throw new Error(`unsupported activation ${raw}`);
    const [needsAlpha, needsBeta, defaultAlpha, defaultBeta] = params;
    const alpha = needsAlpha ? (nextAlpha < alphas.length ? alphas[nextAlpha++] : defaultAlpha) : 0;
    const beta = needsBeta ? (nextBeta < betas.length ? betas[nextBeta++] : defaultBeta) : 0;
    if (alpha === undefined || beta === undefined) throw new Error(`${raw} needs explicit alpha/beta`);
    return activationFunction(name, alpha, beta);
  });
  return Array.from({ length: dirs }, (_, d) => fns.slice(d * perDirection, (d + 1) * perDirection));
}

/** sum_k a[aOff + k] * b[bOff + k], k < n */
function dot(a: Numbers, aOff: number, b: Numbers, bOff: number, n: number): number {
  let s = 0;
  for (let k = 0; k < n; k++) s += a[aOff + k] * b[bOff + k];
  return s;
}

/**
 * float64 ONNX operator: x [T, N, I]; h0 / c0 [dirs, N, H] (zeros when omitted).
 * Weights, biases, peepholes and attributes are taken from `spec`.
 */
export function onnxReference(spec: OnnxRnnSpec, x: Numbers, h0?: Numbers, c0?: Numbers): OnnxReferenceResult {
  const { op, T, N, I, H } = spec;
  const dirs = onnxNumDirections(spec.direction);
  const G = onnxGateCount(op);
  const GH = G * H;
  const acts = resolveActivations(spec, dirs);
  const clipLimit = spec.clip;
  const clip = clipLimit === undefined ? (v: number) => v : (v: number) => Math.min(clipLimit, Math.max(-clipLimit, v));
  const bias = spec.B;
  const Y = new Float64Array(T * dirs * N * H);
  const Y_h = new Float64Array(dirs * N * H);
  const Y_c = op === 'LSTM' ? new Float64Array(dirs * N * H) : undefined;

  for (let d = 0; d < dirs; d++) {
    const reverse = spec.direction === 'reverse' || d === 1;
    const [f, g, h] = acts[d];
    // x[t, b] . W[d, gate*H + j] + Wb[d, gate*H + j]
    const xw = (t: number, b: number, gate: number, j: number): number => {
      const row = d * GH + gate * H + j;
      return dot(x, (t * N + b) * I, spec.W, row * I, I) + (bias ? bias[d * 2 * GH + gate * H + j] : 0);
    };
    // v[vOff .. vOff + H] . R[d, gate*H + j] + Rb[d, gate*H + j]
    const hr = (v: Numbers, vOff: number, gate: number, j: number): number => {
      const row = d * GH + gate * H + j;
      return dot(v, vOff, spec.R, row * H, H) + (bias ? bias[d * 2 * GH + GH + gate * H + j] : 0);
    };
    const peephole = (p: number, j: number): number => (spec.P ? spec.P[d * 3 * H + p * H + j] : 0);

    let hPrev = h0 ? Float64Array.from({ length: N * H }, (_, k) => h0[d * N * H + k]) : new Float64Array(N * H);
    let cPrev = c0 ? Float64Array.from({ length: N * H }, (_, k) => c0[d * N * H + k]) : new Float64Array(N * H);

    for (let step = 0; step < T; step++) {
      const t = reverse ? T - 1 - step : step;
      const hNext = new Float64Array(N * H);
      const cNext = new Float64Array(N * H);
      for (let b = 0; b < N; b++) {
        if (op === 'RNN') {
          for (let j = 0; j < H; j++) hNext[b * H + j] = f(clip(xw(t, b, 0, j) + hr(hPrev, b * H, 0, j)));
        } else if (op === 'LSTM') {
          // gate blocks i, o, f, c ; peepholes i, o, f
          for (let j = 0; j < H; j++) {
            const k = b * H + j;
            const c = cPrev[k];
            const it = f(clip(xw(t, b, 0, j) + hr(hPrev, b * H, 0, j) + peephole(0, j) * c));
            const ft = spec.inputForget
              ? 1 - it
              : f(clip(xw(t, b, 2, j) + hr(hPrev, b * H, 2, j) + peephole(2, j) * c));
            const ct = g(clip(xw(t, b, 3, j) + hr(hPrev, b * H, 3, j)));
            const C = ft * c + it * ct;
            const ot = f(clip(xw(t, b, 1, j) + hr(hPrev, b * H, 1, j) + peephole(1, j) * C));
            cNext[k] = C;
            hNext[k] = ot * h(C);
          }
        } else {
          // gate blocks z, r, h
          const z = new Float64Array(H);
          const r = new Float64Array(H);
          for (let j = 0; j < H; j++) {
            z[j] = f(clip(xw(t, b, 0, j) + hr(hPrev, b * H, 0, j)));
            r[j] = f(clip(xw(t, b, 1, j) + hr(hPrev, b * H, 1, j)));
          }
          const rTimesH = Float64Array.from({ length: H }, (_, k) => r[k] * hPrev[b * H + k]);
          for (let j = 0; j < H; j++) {
            const recurrent = spec.linearBeforeReset ? r[j] * hr(hPrev, b * H, 2, j) : hr(rTimesH, 0, 2, j);
            const ht = g(clip(xw(t, b, 2, j) + recurrent));
            hNext[b * H + j] = (1 - z[j]) * ht + z[j] * hPrev[b * H + j];
          }
        }
      }
      Y.set(hNext, (t * dirs + d) * N * H);
      hPrev = hNext;
      cPrev = cNext;
    }
    Y_h.set(hPrev, d * N * H);
    Y_c?.set(cPrev, d * N * H);
  }
  return Y_c ? { Y, Y_h, Y_c } : { Y, Y_h };
}

export interface TorchReferenceResult {
  /** [T, N, H] */
  output: Float64Array;
  /** [N, H] */
  h_n: Float64Array;
  /** [N, H], LSTM only */
  c_n?: Float64Array;
}

/**
 * float64 PyTorch nn.RNN (tanh) / nn.LSTM / nn.GRU, one layer, one direction, time-major:
 * x [T, N, I]; h0 / c0 [N, H] (zeros when omitted); weights in PyTorch layout and gate order.
 */
export function torchReference(
  op: OnnxCell,
  dims: { T: number; N: number; I: number; H: number },
  w: TorchRnnWeights,
  x: Numbers,
  h0?: Numbers,
  c0?: Numbers,
): TorchReferenceResult {
  const { T, N, I, H } = dims;
  const output = new Float64Array(T * N * H);
  let hPrev = h0 ? Float64Array.from(h0) : new Float64Array(N * H);
  let cPrev = c0 ? Float64Array.from(c0) : new Float64Array(N * H);
  // W_i? x_t + b_i?  and  W_h? h + b_h?  for gate block `gate`, unit j
  const gi = (t: number, b: number, gate: number, j: number): number =>
    dot(x, (t * N + b) * I, w.weight_ih, (gate * H + j) * I, I) + (w.bias_ih ? w.bias_ih[gate * H + j] : 0);
  const gh = (b: number, gate: number, j: number): number =>
    dot(hPrev, b * H, w.weight_hh, (gate * H + j) * H, H) + (w.bias_hh ? w.bias_hh[gate * H + j] : 0);

  for (let t = 0; t < T; t++) {
    const hNext = new Float64Array(N * H);
    const cNext = new Float64Array(N * H);
    for (let b = 0; b < N; b++) {
      for (let j = 0; j < H; j++) {
        const k = b * H + j;
        if (op === 'RNN') {
          hNext[k] = Math.tanh(gi(t, b, 0, j) + gh(b, 0, j));
        } else if (op === 'LSTM') {
          // i, f, g, o
          const i = sigmoid(gi(t, b, 0, j) + gh(b, 0, j));
          const f = sigmoid(gi(t, b, 1, j) + gh(b, 1, j));
          const g = Math.tanh(gi(t, b, 2, j) + gh(b, 2, j));
          const o = sigmoid(gi(t, b, 3, j) + gh(b, 3, j));
          cNext[k] = f * cPrev[k] + i * g;
          hNext[k] = o * Math.tanh(cNext[k]);
        } else {
          // r, z, n
          const r = sigmoid(gi(t, b, 0, j) + gh(b, 0, j));
          const z = sigmoid(gi(t, b, 1, j) + gh(b, 1, j));
          const n = Math.tanh(gi(t, b, 2, j) + r * gh(b, 2, j));
          hNext[k] = (1 - z) * n + z * hPrev[k];
        }
      }
    }
    output.set(hNext, t * N * H);
    hPrev = hNext;
    cPrev = cNext;
  }
  return op === 'LSTM' ? { output, h_n: hPrev, c_n: cPrev } : { output, h_n: hPrev };
}
