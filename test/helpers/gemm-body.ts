// Child body of test/gemm.test.ts: native.gemm against a plain triple loop (both dtypes, every
// transpose), then hostile arguments, each of which must be a TypeError or RangeError. Prints `ok: …`.
import { native } from '../../lib/native.js';

function reference(ta: boolean, tb: boolean, m: number, n: number, k: number, alpha: number, a: ArrayLike<number>, b: ArrayLike<number>, beta: number, c: ArrayLike<number>): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let p = 0; p < k; p++) s += (ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]);
    out[i * n + j] = alpha * s + beta * c[i * n + j];
  }
  return out;
}

let worst = 0;
let seed = 1;
const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
for (const dtype of ['float32', 'float64'] as const) {
  const make = (n: number) => (dtype === 'float64' ? Float64Array.from({ length: n }, rnd) : Float32Array.from({ length: n }, rnd));
  for (const [m, n, k] of [[1, 1, 1], [3, 5, 7], [17, 9, 33], [64, 62, 192]]) {
    for (const ta of [false, true]) for (const tb of [false, true]) {
      const a = make(m * k), b = make(k * n), c = make(m * n);
      const want = reference(ta, tb, m, n, k, 0.5, a, b, 2, c);
      native.gemm({ transA: ta, transB: tb, m, n, k, alpha: 0.5, beta: 2 }, { a, b, c });
      for (let i = 0; i < want.length; i++) {
        const err = Math.abs(c[i] - want[i]) / Math.max(1, Math.abs(want[i]));
        if (err > (dtype === 'float64' ? 1e-12 : 1e-5)) throw new Error(`gemm ${dtype} ${m}x${n}x${k} ta=${ta} tb=${tb}: entry ${i} ${c[i]} vs ${want[i]}`);
        worst = Math.max(worst, dtype === 'float64' ? err : 0);
      }
    }
  }
}

const f = (n: number) => new Float32Array(n);
const hostile: [string, () => void][] = [
  ['no arguments', () => (native.gemm as unknown as () => void)()],
  ['config not an object', () => native.gemm(5 as never, { a: f(1), b: f(1), c: f(1) })],
  ['m = 0', () => native.gemm({ m: 0, n: 1, k: 1 }, { a: f(1), b: f(1), c: f(1) })],
  ['m = 2^31', () => native.gemm({ m: 2 ** 31, n: 1, k: 1 }, { a: f(1), b: f(1), c: f(1) })],
  ['m·k ≥ 2^31', () => native.gemm({ m: 65536, n: 1, k: 65536 }, { a: f(1), b: f(1), c: f(1) })],
  ['a too short', () => native.gemm({ m: 4, n: 4, k: 4 }, { a: f(15), b: f(16), c: f(16) })],
  ['c too long', () => native.gemm({ m: 4, n: 4, k: 4 }, { a: f(16), b: f(16), c: f(17) })],
  ['mixed dtypes', () => native.gemm({ m: 2, n: 2, k: 2 }, { a: f(4), b: new Float64Array(4), c: f(4) })],
  ['an Int32Array', () => native.gemm({ m: 2, n: 2, k: 2 }, { a: f(4), b: new Int32Array(4) as never, c: f(4) })],
  ['c missing', () => native.gemm({ m: 2, n: 2, k: 2 }, { a: f(4), b: f(4) } as never)],
  ['c aliases a', () => { const a = f(4); native.gemm({ m: 2, n: 2, k: 2 }, { a, b: f(4), c: a }); }],
  ['NaN alpha', () => native.gemm({ m: 2, n: 2, k: 2, alpha: NaN }, { a: f(4), b: f(4), c: f(4) })],
  ['transA not boolean', () => native.gemm({ m: 2, n: 2, k: 2, transA: 1 as never }, { a: f(4), b: f(4), c: f(4) })],
  ['shared buffer', () => native.gemm({ m: 1, n: 1, k: 1 }, { a: new Float32Array(new SharedArrayBuffer(4)), b: f(1), c: f(1) })],
  ['detached c', () => { const c = f(1); structuredClone(c.buffer, { transfer: [c.buffer] }); native.gemm({ m: 1, n: 1, k: 1 }, { a: f(1), b: f(1), c }); }],
];
for (const [name, fn] of hostile) {
  try {
    fn();
  } catch (e) {
    if (e instanceof TypeError || e instanceof RangeError) continue;
    throw new Error(`${name}: expected a TypeError or RangeError, got ${e}`);
  }
  throw new Error(`${name}: accepted`);
}
console.log(`ok: gemm agrees with the reference (float64 worst ${worst.toExponential(1)}); ${hostile.length} hostile calls refused`);
