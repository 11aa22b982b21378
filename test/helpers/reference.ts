/**
 * Plain TypeScript, float64 reference forward pass for a single-layer, unidirectional
 * recurrent layer, written directly from the cell equations so it can independently check
 * other implementations (the tfjs oracle, the native library).
 *
 * Layout conventions (PyTorch):
 *  - `x`: time-major [T, B, I]; `h0`, `c0`: [B, H]; outputs `y`: [T, B, H], `hN`, `cN`: [B, H].
 *  - `weight_ih_l0` [G*H, I], `weight_hh_l0` [G*H, H], `bias_ih_l0` / `bias_hh_l0` [G*H],
 *    all row-major, with G stacked gate blocks of H rows each.
 *
 * Equations, with a_k = W_ih[k] x_t + b_ih[k] and r_k = W_hh[k] h_{t-1} + b_hh[k] for gate block k:
 *  - rnn_tanh / rnn_relu (G=1):  h_t = act(a + r)
 *  - lstm (G=4, blocks i,f,g,o):
 *      i = σ(a_i + r_i), f = σ(a_f + r_f), g = tanh(a_g + r_g), o = σ(a_o + r_o)
 *      c_t = f ⊙ c_{t-1} + i ⊙ g,   h_t = o ⊙ tanh(c_t)
 *  - gru (G=3, blocks r,z,n), RESET-BEFORE form (Cho et al. 2014, as in Keras/tfjs with
 *    resetAfter=false; this is NOT PyTorch's nn.GRU, which applies r after W_hn h + b_hn):
 *      r = σ(a_r + r_r), z = σ(a_z + r_z)
 *      n = tanh(a_n + W_hh[n] (r ⊙ h_{t-1}) + b_hh[n])
 *      h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}
 *
 * Missing `h0` / `c0` are zeros. Inputs may be any numeric array-likes (Float32Array values
 * are widened exactly); all arithmetic and outputs are float64.
 */

export type ReferenceCell = 'rnn_tanh' | 'rnn_relu' | 'lstm' | 'gru';

export interface ReferenceWeights {
  /** [G*H, I] */
  weight_ih_l0: ArrayLike<number>;
  /** [G*H, H] */
  weight_hh_l0: ArrayLike<number>;
  /** [G*H] */
  bias_ih_l0: ArrayLike<number>;
  /** [G*H] */
  bias_hh_l0: ArrayLike<number>;
}

export interface ReferenceInput {
  cell: ReferenceCell;
  T: number;
  B: number;
  I: number;
  H: number;
  /** Time-major [T, B, I]. */
  x: ArrayLike<number>;
  /** [B, H]; omitted = zeros. */
  h0?: ArrayLike<number>;
  /** [B, H], LSTM only; omitted = zeros. */
  c0?: ArrayLike<number>;
  weights: ReferenceWeights;
}

export interface ReferenceOutput {
  /** Time-major [T, B, H]. */
  y: Float64Array;
  /** [B, H] */
  hN: Float64Array;
  /** [B, H], present for LSTM only. */
  cN?: Float64Array;
}

/** Number of stacked gate blocks G for a cell type. */
export function referenceGateCount(cell: ReferenceCell): 1 | 3 | 4 {
  switch (cell) {
    case 'rnn_tanh':
    case 'rnn_relu':
      return 1;
    case 'gru':
      return 3;
    case 'lstm':
      return 4;
  }
}

const sigmoid = (v: number): number => 1 / (1 + Math.exp(-v));

function assertLength(name: string, a: ArrayLike<number> | undefined, expected: number): void {
  if (a !== undefined && a.length !== expected) {
    throw new RangeError(`referenceForward: ${name} has length ${a.length}, expected ${expected}`);
  }
}

/**
 * out[k] = bias[k] + sum_c W[k, c] * v[vOffset + c] for rows k in [row0, row0 + rows),
 * written to out[k - row0]. W is row-major with `cols` columns.
 */
function affine(
  W: ArrayLike<number>,
  bias: ArrayLike<number>,
  v: ArrayLike<number>,
  vOffset: number,
  row0: number,
  rows: number,
  cols: number,
): Float64Array {
  const out = new Float64Array(rows);
  for (let k = 0; k < rows; k++) {
    let s = bias[row0 + k];
    const base = (row0 + k) * cols;
    for (let c = 0; c < cols; c++) s += W[base + c] * v[vOffset + c];
    out[k] = s;
  }
  return out;
}

/** Float64 forward pass of one recurrent layer (see the module comment for the equations). */
export function referenceForward(input: ReferenceInput): ReferenceOutput {
  const { cell, T, B, I, H, x, weights } = input;
  const G = referenceGateCount(cell);
  const GH = G * H;
  const { weight_ih_l0: Wih, weight_hh_l0: Whh, bias_ih_l0: bih, bias_hh_l0: bhh } = weights;
  assertLength('x', x, T * B * I);
  assertLength('h0', input.h0, B * H);
  assertLength('c0', input.c0, B * H);
  assertLength('weight_ih_l0', Wih, GH * I);
  assertLength('weight_hh_l0', Whh, GH * H);
  assertLength('bias_ih_l0', bih, GH);
  assertLength('bias_hh_l0', bhh, GH);
  if (cell !== 'lstm' && input.c0 !== undefined) throw new TypeError(`referenceForward: c0 given for '${cell}'`);

  const h = input.h0 ? Float64Array.from(input.h0) : new Float64Array(B * H);
  const c = input.c0 ? Float64Array.from(input.c0) : new Float64Array(B * H);
  const y = new Float64Array(T * B * H);

  for (let t = 0; t < T; t++) {
    for (let b = 0; b < B; b++) {
      const xOff = (t * B + b) * I;
      const hOff = b * H;
      const hPrev = h.slice(hOff, hOff + H);
      const hNew = new Float64Array(H);

      if (cell === 'gru') {
        // r and z blocks use the plain recurrent term; the n block needs r first.
        const a = affine(Wih, bih, x, xOff, 0, GH, I);
        const rz = affine(Whh, bhh, hPrev, 0, 0, 2 * H, H);
        const r = new Float64Array(H);
        const z = new Float64Array(H);
        for (let j = 0; j < H; j++) {
          r[j] = sigmoid(a[j] + rz[j]);
          z[j] = sigmoid(a[H + j] + rz[H + j]);
        }
        const rh = hPrev.map((v, j) => r[j] * v);
        const rn = affine(Whh, bhh, rh, 0, 2 * H, H, H);
        for (let j = 0; j < H; j++) {
          const n = Math.tanh(a[2 * H + j] + rn[j]);
          hNew[j] = (1 - z[j]) * n + z[j] * hPrev[j];
        }
      } else {
        const a = affine(Wih, bih, x, xOff, 0, GH, I);
        const r = affine(Whh, bhh, hPrev, 0, 0, GH, H);
        const pre = a.map((v, k) => v + r[k]);
        for (let j = 0; j < H; j++) {
          if (cell === 'lstm') {
            const i = sigmoid(pre[j]);
            const f = sigmoid(pre[H + j]);
            const g = Math.tanh(pre[2 * H + j]);
            const o = sigmoid(pre[3 * H + j]);
            const cNew = f * c[hOff + j] + i * g;
            c[hOff + j] = cNew;
            hNew[j] = o * Math.tanh(cNew);
          } else if (cell === 'rnn_tanh') {
            hNew[j] = Math.tanh(pre[j]);
          } else {
            hNew[j] = Math.max(0, pre[j]);
          }
        }
      }

      h.set(hNew, hOff);
      y.set(hNew, (t * B + b) * H);
    }
  }

  return cell === 'lstm' ? { y, hN: h, cN: c } : { y, hN: h };
}
