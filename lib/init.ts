// Weight initializers (Keras defaults) driven by a small seedable generator, so a seed reproduces a model.

/** mulberry32: a tiny, fast, seedable 32-bit generator; uniform in [0, 1). */
export class Random {
  private state: number;
  constructor(seed: number = (Math.random() * 2 ** 32) >>> 0) {
    this.state = seed >>> 0;
  }
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

/** Glorot/Xavier uniform for a [fanOut, fanIn] matrix, written into out. */
export function glorotUniform(out: Float32Array | Float64Array, fanOut: number, fanIn: number, rng: Random): void {
  const limit = Math.sqrt(6 / (fanIn + fanOut));
  for (let i = 0; i < out.length; i++) out[i] = rng.uniform(-limit, limit);
}

/**
 * Orthogonal initialisation of `blocks` stacked [n, n] blocks (one per gate of a recurrent matrix),
 * each from modified Gram–Schmidt on a Gaussian matrix.
 */
export function orthogonalBlocks(out: Float32Array | Float64Array, blocks: number, n: number, rng: Random): void {
  const q = new Float64Array(n * n);
  for (let blk = 0; blk < blocks; blk++) {
    for (let i = 0; i < n * n; i++) q[i] = rng.normal();
    for (let r = 0; r < n; r++) {
      const row = r * n;
      for (let p = 0; p < r; p++) {
        let dot = 0;
        for (let k = 0; k < n; k++) dot += q[row + k] * q[p * n + k];
        for (let k = 0; k < n; k++) q[row + k] -= dot * q[p * n + k];
      }
      let norm = 0;
      for (let k = 0; k < n; k++) norm += q[row + k] * q[row + k];
      norm = Math.sqrt(norm) || 1;
      for (let k = 0; k < n; k++) q[row + k] /= norm;
    }
    out.set(q, blk * n * n);
  }
}
