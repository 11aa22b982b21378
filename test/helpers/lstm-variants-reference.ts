/**
 * Plain float64 TypeScript reference of the LSTM with every cell option, written from the equations
 * (Greff et al. 2015, "LSTM: A Search Space Odyssey", plus ONNX clip and TF1 cell_clip), not from the
 * native code. Weights in PyTorch layout and gate order i, f, g, o; peepholes [3H] = p_i, p_f, p_o.
 *
 *   a_k   = W_k x_t + b_ih,k + R_k h_{t-1} + b_hh,k                    (k = i, f, g, o)
 *   i     = NIG  ? 1 : σ(clip(a_i + p_i ⊙ c_{t-1}))
 *   f     = NFG  ? 1 : CIFG ? 1 − i : σ(clip(a_f + p_f ⊙ c_{t-1}))
 *   g     = act_g(clip(a_g))                                         (NIAF: act_g = linear)
 *   c_t   = f ⊙ c_{t-1} + i ⊙ g,  then with cellClip: c_t = clamp(c_t, ±cellClip)
 *   o     = NOG  ? 1 : σ(clip(a_o + p_o ⊙ c_t))
 *   h_t   = o ⊙ act_h(c_t)                                           (NOAF: act_h = linear)
 *
 * σ is the gate activation (default sigmoid), clip(v) = clamp(v, ±clip) when clip > 0; the cell
 * state fed to act_h is not affected by `clip`. Peephole terms are absent without peepholes.
 * x is time-major [T, B, I] in processing order (reverse it first for goBackwards); outputs are in
 * processing order too.
 */
import type { ActivationSpec, LSTMVariant } from '../../lib/index.js';
import { act, applyAct, clamp, KinkTracker, type Act } from './activation-reference.js';

export interface LstmVariantOptions {
  /** i, f, o activation; default sigmoid. */
  gate?: ActivationSpec;
  /** g activation; default tanh. */
  candidate?: ActivationSpec;
  /** activation of c_t in h_t; default tanh. */
  output?: ActivationSpec;
  peepholes?: boolean;
  /** false: NIG (i = 1). */
  inputGate?: boolean;
  /** false: NFG (f = 1). */
  forgetGate?: boolean;
  /** false: NOG (o = 1). */
  outputGate?: boolean;
  /** CIFG: f = 1 − i. */
  coupled?: boolean;
  /** ONNX clip of the gate pre-activations (0 / undefined = off). */
  clip?: number;
  /** TF1 cell clip of c_t (0 / undefined = off). */
  cellClip?: number;
}

/** The variants this reference knows (a subset of the library's LSTMVariant, which may grow). */
export type ReferenceVariant = Extract<LSTMVariant, 'V' | 'NIG' | 'NFG' | 'NOG' | 'NIAF' | 'NOAF' | 'NP' | 'CIFG'>;

/**
 * The Greff et al. variants, from the paper: V is the vanilla LSTM with peepholes; each other one
 * changes exactly one thing of V (NP removes the peepholes). (FGR, full gate recurrence, is not here.)
 */
export const GREFF_VARIANTS: Record<ReferenceVariant, LstmVariantOptions> = {
  V: { peepholes: true },
  NIG: { peepholes: true, inputGate: false },
  NFG: { peepholes: true, forgetGate: false },
  NOG: { peepholes: true, outputGate: false },
  NIAF: { peepholes: true, candidate: 'linear' },
  NOAF: { peepholes: true, output: 'linear' },
  NP: { peepholes: false },
  CIFG: { peepholes: true, coupled: true },
};

export interface LstmReferenceWeights {
  weight_ih_l0: ArrayLike<number>;
  weight_hh_l0: ArrayLike<number>;
  bias_ih_l0?: ArrayLike<number>;
  bias_hh_l0?: ArrayLike<number>;
  weight_peephole_l0?: ArrayLike<number>;
}

export interface LstmReferenceInput {
  T: number;
  B: number;
  I: number;
  H: number;
  /** Time-major [T, B, I], processing order. */
  x: ArrayLike<number>;
  /** [B, H]; omitted = zeros. */
  h0?: ArrayLike<number>;
  c0?: ArrayLike<number>;
  weights: LstmReferenceWeights;
  options: LstmVariantOptions;
  /** Records how close every pre-activation (and c_t, for cellClip and act_h) came to a kink. */
  tracker?: KinkTracker;
}

export interface LstmReferenceOutput {
  /** [T, B, H], processing order. */
  y: Float64Array;
  hN: Float64Array;
  cN: Float64Array;
}

export function lstmVariantReference(inp: LstmReferenceInput): LstmReferenceOutput {
  const { T, B, I, H, x, weights: w, options: o, tracker } = inp;
  const fa: Act = act(o.gate ?? 'sigmoid');
  const ga: Act = act(o.candidate ?? 'tanh');
  const ha: Act = act(o.output ?? 'tanh');
  const clip = o.clip ?? 0;
  const cellClip = o.cellClip ?? 0;
  const nig = o.inputGate === false;
  const nfg = o.forgetGate === false;
  const nog = o.outputGate === false;
  const cifg = o.coupled === true;
  if (cifg && (nig || nfg)) throw new Error('lstmVariantReference: CIFG needs both the input and the forget gate');
  const peep = o.peepholes === true ? w.weight_peephole_l0 : undefined;
  if (o.peepholes === true && (!peep || peep.length !== 3 * H)) throw new Error('lstmVariantReference: peepholes need weight_peephole_l0 [3H]');
  if (w.weight_ih_l0.length !== 4 * H * I || w.weight_hh_l0.length !== 4 * H * H) throw new Error('lstmVariantReference: weight shapes');

  let h = new Float64Array(B * H);
  let c = new Float64Array(B * H);
  if (inp.h0) h.set(Array.from(inp.h0));
  if (inp.c0) c.set(Array.from(inp.c0));
  const y = new Float64Array(T * B * H);

  const pre = (k: number, t: number, b: number, hPrev: Float64Array): number => {
    let s = (w.bias_ih_l0?.[k] ?? 0) + (w.bias_hh_l0?.[k] ?? 0);
    for (let q = 0; q < I; q++) s += w.weight_ih_l0[k * I + q] * x[(t * B + b) * I + q];
    for (let q = 0; q < H; q++) s += w.weight_hh_l0[k * H + q] * hPrev[b * H + q];
    return s;
  };

  for (let t = 0; t < T; t++) {
    const hNext = new Float64Array(B * H);
    const cNext = new Float64Array(B * H);
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < H; j++) {
        const at = `t=${t} b=${b} j=${j}`;
        const cPrev = c[b * H + j];
        const ai = pre(j, t, b, h) + (peep ? peep[j] * cPrev : 0);
        const af = pre(H + j, t, b, h) + (peep ? peep[H + j] * cPrev : 0);
        const ag = pre(2 * H + j, t, b, h);
        const i = nig ? 1 : applyAct(fa, clamp(ai, clip));
        if (!nig) tracker?.observeGate('i', ai, clip, fa, at);
        let f: number;
        if (nfg) f = 1;
        else if (cifg) f = 1 - i;
        else {
          f = applyAct(fa, clamp(af, clip));
          tracker?.observeGate('f', af, clip, fa, at);
        }
        const g = applyAct(ga, clamp(ag, clip));
        tracker?.observeGate('g', ag, clip, ga, at);
        let ct = f * cPrev + i * g;
        if (cellClip > 0) {
          tracker?.observe('c cellClip', ct, [-cellClip, cellClip], at);
          ct = clamp(ct, cellClip);
        }
        const ao = pre(3 * H + j, t, b, h) + (peep ? peep[2 * H + j] * ct : 0);
        const og = nog ? 1 : applyAct(fa, clamp(ao, clip));
        if (!nog) tracker?.observeGate('o', ao, clip, fa, at);
        tracker?.observeGate('h(c)', ct, 0, ha, at);
        const ht = og * applyAct(ha, ct);
        cNext[b * H + j] = ct;
        hNext[b * H + j] = ht;
        y[(t * B + b) * H + j] = ht;
      }
    }
    h = hNext;
    c = cNext;
  }
  return { y, hN: h, cN: c };
}
