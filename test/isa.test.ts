/**
 * The kernel builds: RNNKIT_ISA=avx512|avx2|generic selects the step kernels and the packed GEMM
 * (cpuInfo() reports it; an unknown name or one the CPU cannot run falls back to the best), and
 * every build the CPU runs computes the same forward and backward as the best build, within float32
 * rounding. Each build runs in its own child process (the choice is read once, at load).
 * `npm run test:isa` runs the kernel-covering suites under each build as well.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertChildOk, runNodeChild } from './helpers/child.js';
import { compare } from './helpers/compare.js';

type Result = { info: { isa: string; best: string; gemm: string }; out: Record<string, { y: number[]; dx: number[]; dW: number[] }> };
const ORDER = ['generic', 'avx2', 'avx512'];

function run(isa: string | undefined): Result {
  // An empty RNNKIT_ISA is the automatic choice (the child inherits the parent's environment).
  const line = assertChildOk(runNodeChild('test/helpers/isa-body.ts', [], { env: { RNNKIT_ISA: isa ?? '' } }), `RNNKIT_ISA=${isa ?? '(automatic)'}`);
  return JSON.parse(line.slice('ok: '.length)) as Result;
}

test('RNNKIT_ISA selects the kernel build; every build the CPU runs matches the best one', (t) => {
  const best = run(undefined);
  assert.ok(ORDER.includes(best.info.best), best.info.best);
  assert.equal(best.info.isa, best.info.best);
  assert.equal(best.info.gemm, best.info.best);
  t.diagnostic(`best build on this CPU: ${best.info.best}`);
  for (const name of ['bogus', 'AVX2']) {
    const r = run(name);
    assert.equal(r.info.isa, best.info.best, `RNNKIT_ISA=${JSON.stringify(name)} must fall back to the best build`);
  }
  for (const isa of ORDER) {
    const r = run(isa);
    const runnable = ORDER.indexOf(isa) <= ORDER.indexOf(best.info.best);
    const expected = runnable ? isa : best.info.best;
    assert.equal(r.info.isa, expected, `RNNKIT_ISA=${isa}: step kernels`);
    assert.equal(r.info.gemm, expected, `RNNKIT_ISA=${isa}: packed GEMM`);
    for (const [layer, o] of Object.entries(r.out)) {
      const ref = best.out[layer];
      for (const key of ['y', 'dx', 'dW'] as const) {
        const rep = compare(o[key], ref[key], { rtol: 1e-5, floor: 1 });
        assert.ok(rep.worstRatio <= 1, `${isa} ${layer}.${key}: differs from ${best.info.best} by ${rep.maxAbs}`);
      }
    }
    t.diagnostic(`${isa}: ${runnable ? 'ran and matched' : `not runnable here, fell back to ${expected}`}`);
  }
});
