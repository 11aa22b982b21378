/**
 * The float32 sigmoid and tanh the fused step kernels use, measured against double precision over
 * their whole useful range (2^20 points over [-20, 20], [-100, 100] coarsely, and ±2^-k down to
 * 2^-126), in the kernel build this process picks (test:isa repeats this under avx2 and generic).
 * Stated bounds (README, How it is built): relative error ≤ 5e-7 for both (tanh's small values
 * through the odd numerator of its approximation; sigmoid wherever σ(x) ≥ 1e-30); absolute error
 * ≤ 2e-7 for sigmoid, and for tanh ≤ 3e-7 (the AVX-512 and AVX2 builds use a rational
 * approximation, cells/simd_math.h) — a few float32 ulps, far inside the 1e-5 tolerance of the
 * oracle tests. Measured: tanh 2.85e-7 / 2.85e-7 in the vector builds (7e-8 / 1.3e-7 generic),
 * sigmoid ~9e-8 / 1.5e-7.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertChildOk, runNodeChild } from './helpers/child.js';

interface Stats { points: number; maxAbs: number; atAbs: number; maxRel: number; atRel: number; nonFinite: number }

test('float32 sigmoid and tanh of the step kernels: maximum error against double precision', (t) => {
  const line = assertChildOk(runNodeChild('test/helpers/activation-accuracy-body.ts', []), 'activation accuracy');
  const r = JSON.parse(line.slice('ok: '.length)) as { isa: string; tanh: Stats; sigmoid: Stats };
  const show = (s: Stats) => `max abs ${s.maxAbs.toExponential(2)} (x = ${s.atAbs}), max rel ${s.maxRel.toExponential(2)} (x = ${s.atRel}) over ${s.points} points`;
  t.diagnostic(`${r.isa} build: tanh ${show(r.tanh)}; sigmoid ${show(r.sigmoid)}`);
  for (const [name, s, absBound, relBound] of [['tanh', r.tanh, 3e-7, 5e-7], ['sigmoid', r.sigmoid, 2e-7, 5e-7]] as const) {
    assert.equal(s.nonFinite, 0, `${name}: non-finite outputs`);
    assert.ok(s.maxAbs <= absBound, `${name}: ${show(s)}`);
    assert.ok(s.maxRel <= relBound, `${name}: ${show(s)}`);
  }
});
