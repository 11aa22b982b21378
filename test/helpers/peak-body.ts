/**
 * The child side of test/peak.test.ts: native.measurePeak's result shape and its argument checks.
 * Prints `ok: ` and JSON with the results (under whatever RNNKIT_ISA the parent set), or throws.
 */
import assert from 'node:assert/strict';
import { cpuInfo, setNumThreads } from '../../lib/index.js';
import { native, type PeakInfo } from '../../lib/native.js';

const FIGURES = ['fmaPeakGflops1', 'fmaPeakGflopsAll', 'gemmGflops1', 'gemmGflopsAll', 'l2ReadGBs1'] as const;

function checkShape(r: PeakInfo, threads: number, ms: number): void {
  assert.deepEqual(Object.keys(r).sort(), ['fmaPeakGflops1', 'fmaPeakGflopsAll', 'gemmGflops1', 'gemmGflopsAll', 'gemmIsa', 'isa', 'l2ReadGBs1', 'ms', 'threads']);
  assert.equal(r.isa, cpuInfo().isa, 'isa: the FMA loop runs the active build');
  assert.equal(r.gemmIsa, cpuInfo().gemm, 'gemmIsa: the packed GEMM in use');
  assert.equal(r.threads, threads);
  assert.equal(r.ms, ms);
  for (const k of FIGURES) {
    assert.equal(typeof r[k], 'number', k);
    assert.ok(Number.isFinite(r[k]) && r[k] > 0, `${k}: expected a finite rate > 0, got ${r[k]}`);
  }
}

setNumThreads(2);
const all = native.measurePeak({ ms: 20 });
checkShape(all, 2, 20);
const one = native.measurePeak({ ms: 5, threads: 1 });
checkShape(one, 1, 5);
const dflt = native.measurePeak(undefined);
checkShape(dflt, 2, 200);

function refuses(args: unknown[], kind: typeof TypeError | typeof RangeError, names: string): void {
  assert.throws(
    () => (native.measurePeak as (...a: unknown[]) => unknown)(...args),
    (e: unknown) => e instanceof kind && e.message.includes(names),
    `measurePeak(${args.map((a) => JSON.stringify(a)).join(', ')}): expected a ${kind.name} naming ${names}`,
  );
}
refuses([5], TypeError, 'options');
refuses(['fast'], TypeError, 'options');
refuses([[1]], TypeError, 'options');
refuses([null], TypeError, 'options');
refuses([{ bogus: 1 }], TypeError, 'options.bogus');
refuses([{ ms: 10, iterations: 3 }], TypeError, 'options.iterations');
refuses([{ ms: '10' }], TypeError, 'options.ms');
refuses([{ ms: 0 }], RangeError, 'options.ms');
refuses([{ ms: -5 }], RangeError, 'options.ms');
refuses([{ ms: NaN }], RangeError, 'options.ms');
refuses([{ ms: Infinity }], RangeError, 'options.ms');
refuses([{ ms: 60001 }], RangeError, 'options.ms');
refuses([{ threads: '2' }], TypeError, 'options.threads');
refuses([{ threads: 0 }], RangeError, 'options.threads');
refuses([{ threads: 1.5 }], RangeError, 'options.threads');
refuses([{ threads: 3 }], RangeError, 'options.threads'); // more than the pool runs
refuses([{ threads: NaN }], RangeError, 'options.threads');
// Still usable after the refusals.
checkShape(native.measurePeak({ ms: 2, threads: 2 }), 2, 2);
console.log(`ok: ${JSON.stringify({ all, one })}`);
