/**
 * The ONNX activation set in plain float64 TypeScript, written from the ONNX operator text (not from
 * lib/activations.ts), for the references of the cell options:
 *
 *   sigmoid, tanh, relu
 *   hardSigmoid      clip(αx + β, 0, 1)         α = 0.2, β = 0.5
 *   linear           x                           (ONNX Affine, α = 1, β = 0)
 *   affine           αx + β                      α = 1, β = 0
 *   leakyRelu        x < 0 ? αx : x              α = 0.01
 *   thresholdedRelu  x > α ? x : 0               α = 1
 *   scaledTanh       α·tanh(βx)                  α = 1, β = 1
 *   elu              x < 0 ? α(eˣ − 1) : x        α = 1
 *   softsign         x / (1 + |x|)
 *   softplus         log(1 + eˣ)
 *
 * Besides the functions this module knows where each one is not smooth ({@link kinksOf}): finite
 * differences and float32-vs-float64 comparisons are only meaningful away from those points, so the
 * references record how close every pre-activation came to one ({@link KinkTracker}).
 */
import type { ActivationName, ActivationSpec } from '../../lib/index.js';

export interface Act {
  name: ActivationName;
  alpha: number;
  beta: number;
}

/** Every activation name of the set, in a fixed order (kept independent of the library's list). */
export const ALL_ACTIVATIONS: readonly ActivationName[] = [
  'sigmoid',
  'tanh',
  'relu',
  'hardSigmoid',
  'linear',
  'affine',
  'leakyRelu',
  'thresholdedRelu',
  'scaledTanh',
  'elu',
  'softsign',
  'softplus',
];

const DEFAULTS: Record<ActivationName, [number, number]> = {
  sigmoid: [0, 0],
  tanh: [0, 0],
  relu: [0, 0],
  hardSigmoid: [0.2, 0.5],
  linear: [1, 0],
  affine: [1, 0],
  leakyRelu: [0.01, 0],
  thresholdedRelu: [1, 0],
  scaledTanh: [1, 1],
  elu: [1, 0],
  softsign: [0, 0],
  softplus: [0, 0],
};

/** A spec (name or {name, alpha, beta}) with the documented defaults filled in. */
export function act(spec: ActivationSpec): Act {
  const name = typeof spec === 'string' ? spec : spec.name;
  const d = DEFAULTS[name];
  if (!d) throw new Error(`activation-reference: unknown activation ${JSON.stringify(spec)}`);
  const alpha = typeof spec === 'object' && spec.alpha !== undefined ? spec.alpha : d[0];
  const beta = typeof spec === 'object' && spec.beta !== undefined ? spec.beta : d[1];
  return { name, alpha, beta };
}

/** Short printable form, e.g. "elu(α=0.7)". */
export function actLabel(spec: ActivationSpec): string {
  if (typeof spec === 'string') return spec;
  const p: string[] = [];
  if (spec.alpha !== undefined) p.push(`α=${spec.alpha}`);
  if (spec.beta !== undefined) p.push(`β=${spec.beta}`);
  return `${spec.name}(${p.join(',')})`;
}

export function applyAct(a: Act, x: number): number {
  const { alpha: al, beta: be } = a;
  switch (a.name) {
    case 'sigmoid':
      return 1 / (1 + Math.exp(-x));
    case 'tanh':
      return Math.tanh(x);
    case 'relu':
      return x > 0 ? x : 0;
    case 'hardSigmoid':
      return Math.min(1, Math.max(0, al * x + be));
    case 'linear':
      return x;
    case 'affine':
      return al * x + be;
    case 'leakyRelu':
      return x < 0 ? al * x : x;
    case 'thresholdedRelu':
      return x > al ? x : 0;
    case 'scaledTanh':
      return al * Math.tanh(be * x);
    case 'elu':
      return x < 0 ? al * Math.expm1(x) : x;
    case 'softsign':
      return x / (1 + Math.abs(x));
    case 'softplus':
      return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
  }
}

/**
 * Points where the function or one of its first two derivatives jumps: a central difference (or a
 * float32 evaluation) straddling one of them is not comparable with the exact derivative.
 * (softsign and elu with α = 1 are C¹ at 0 but their second derivative jumps there.)
 */
export function kinksOf(a: Act): number[] {
  switch (a.name) {
    case 'relu':
    case 'leakyRelu':
    case 'elu':
    case 'softsign':
      return [0];
    case 'hardSigmoid':
      return a.alpha === 0 ? [] : [-a.beta / a.alpha, (1 - a.beta) / a.alpha].sort((p, q) => p - q);
    case 'thresholdedRelu':
      return [a.alpha];
    default:
      return [];
  }
}

/** Clamp to [−c, c]; c = 0 means no clamp. */
export function clamp(x: number, c: number): number {
  return c > 0 ? Math.min(c, Math.max(-c, x)) : x;
}

/**
 * Records, for every value a reference passes through a non-smooth function, how close it came to a
 * kink (nearest one, with the role and step named), and which pieces of each role's function were
 * visited, so a test can both avoid kinks and make sure it exercised every piece (e.g. that a clip
 * really clipped something).
 */
export class KinkTracker {
  /** Smallest distance to a kink seen so far, and where. */
  minDistance = Infinity;
  where = '';
  /** role -> number of kinks of its function, and the set of pieces (0..kinks) visited. */
  readonly pieces = new Map<string, { count: number; seen: Set<number> }>();

  /** Observes x against sorted kinks; `role` names the function (e.g. "LSTM g clip"). */
  observe(role: string, x: number, kinks: readonly number[], at: string): void {
    if (kinks.length === 0) return;
    let piece = 0;
    for (const k of kinks) {
      const d = Math.abs(x - k);
      if (d < this.minDistance) {
        this.minDistance = d;
        this.where = `${role} at ${at}: value ${x}, kink ${k}`;
      }
      if (x > k) piece++;
    }
    let entry = this.pieces.get(role);
    if (!entry) this.pieces.set(role, (entry = { count: kinks.length + 1, seen: new Set() }));
    entry.seen.add(piece);
  }

  /** The clip [−c, c] applied to x (kinks ±c), then the activation applied to the clipped value. */
  observeGate(role: string, x: number, clip: number, a: Act | undefined, at: string): void {
    if (clip > 0) this.observe(`${role} clip`, x, [-clip, clip], at);
    if (a) this.observe(`${role} ${a.name}`, clamp(x, clip), kinksOf(a), at);
  }

  /** Roles whose function has pieces that were never visited, with what was visited. */
  unvisited(filter: (role: string) => boolean = () => true): string[] {
    const out: string[] = [];
    for (const [role, { count, seen }] of this.pieces) {
      if (filter(role) && seen.size < count) out.push(`${role}: visited pieces [${[...seen].sort().join(', ')}] of ${count}`);
    }
    return out;
  }
}
