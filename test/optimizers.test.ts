/**
 * Optimizers (SGD, Adam, AdamW, RMSprop, Adagrad), learning-rate schedules, clipping and checkpoint
 * state.
 *
 *  - Golden steps: every case of test/fixtures/optimizers.json (PyTorch float64 torch.optim steps
 *    from test/fixtures/gen_optimizers.py; its docstring has the conventions) replayed through
 *    optimizerFromConfig, in float64 and in float32, comparing the parameters after every step and
 *    the learning rate each step used. A further group checks that the comparison can fail: every
 *    option a case sets must matter (dropping it moves the parameters far outside the tolerance).
 *  - Schedules: values at chosen iterations, option checks, getConfig round trips.
 *  - State: getState → a new optimizer → setState continues bit-identically to an uninterrupted
 *    run; setState refuses a bad state without changing anything.
 *  - getConfig → JSON → optimizerFromConfig round trips; option checks (unknown options, lr and
 *    learningRate together, ranges); clipping never modifies the caller's gradients.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { trackParameters, WeightVersion } from '../lib/params.js';
import { Tensor, type DType } from '../lib/tensor.js';
import {
  Adagrad, Adam, AdamW, clipGradNorm, optimizerFromConfig, RMSprop, SGD, type Optimizer, type OptimizerState,
} from '../lib/train/optimizers.js';
import { cosineDecay, exponentialDecay, scheduleFromConfig, stepDecay, type LearningRateSchedule } from '../lib/train/schedules.js';

interface GoldenCase {
  name: string;
  className: string;
  config: Record<string, unknown>;
  torch: string;
  params: Record<string, { shape: number[]; data: number[] }>;
  grads: Record<string, number[]>[];
  lrs: number[];
  expected: Record<string, number[]>[];
}
const fixture = JSON.parse(readFileSync(new URL('./fixtures/optimizers.json', import.meta.url), 'utf8')) as {
  torchVersion: string;
  cases: GoldenCase[];
};

/**
 * |got − want| ≤ rtol · max(|want|, 1). The parameters are O(1) (uniform in [−1, 1] to start), so
 * this is a relative tolerance at that scale; the floor keeps entries that are near zero by
 * cancellation from being judged by a meaningless relative error. float64: both sides compute the
 * same float64 operations from the same float64 inputs, and only the order of a few roundings
 * differs (~1e-16). float32: the inputs are float32-exact and the moments float64, so the only error
 * is the rounding of the float32 parameters after each step (~6e-8 each).
 */
const TOL: Record<DType, number> = { float64: 1e-12, float32: 1e-6 };
const FLOOR = 1;

interface Worst {
  ratio: number;
  abs: number;
  where: string;
  got: number;
  want: number;
}

/** Row-major multi-index of a flat index. */
function multiIndex(flat: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length).fill(0);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = flat % shape[d];
    flat = Math.floor(flat / shape[d]);
  }
  return idx;
}

function tensors(rec: Record<string, { shape: number[]; data: number[] }>, dtype: DType): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(rec).map(([k, v]) => [k, Tensor.from(v.data, v.shape, dtype)]));
}

function gradTensors(c: GoldenCase, step: number, dtype: DType): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(c.grads[step]).map(([k, v]) => [k, Tensor.from(v, c.params[k].shape, dtype)]));
}

/**
 * Runs a golden case through `opt` (default: optimizerFromConfig of the case) in `dtype` and
 * returns the worst difference from torch over every step, parameter and element (ratio: relative
 * to the tolerance), and the worst learning-rate difference.
 */
function replay(c: GoldenCase, dtype: DType, opt: Optimizer = optimizerFromConfig({ className: c.className, config: c.config })): { worst: Worst; lrWorst: number; opt: Optimizer } {
  const params = tensors(c.params, dtype);
  const worst: Worst = { ratio: 0, abs: 0, where: 'nowhere', got: NaN, want: NaN };
  let lrWorst = 0;
  c.grads.forEach((_, step) => {
    lrWorst = Math.max(lrWorst, Math.abs(opt.currentLearningRate() - c.lrs[step]) / Math.max(c.lrs[step], 1e-300));
    opt.step(params, gradTensors(c, step, dtype));
    for (const [name, want] of Object.entries(c.expected[step])) {
      const got = params[name].data;
      assert.equal(got.length, want.length, `${c.name}: ${name} length`);
      for (let k = 0; k < want.length; k++) {
        const diff = Math.abs(got[k] - want[k]);
        const ratio = Number.isNaN(diff) ? Infinity : diff / (TOL[dtype] * Math.max(Math.abs(want[k]), FLOOR));
        if (ratio > worst.ratio || worst.where === 'nowhere') {
          Object.assign(worst, { ratio, abs: diff, got: got[k], want: want[k], where: `step ${step}, ${name}[${multiIndex(k, c.params[name].shape).join(', ')}]` });
        }
      }
    }
  });
  return { worst, lrWorst, opt };
}

function describeWorst(w: Worst, dtype: DType): string {
  return `largest difference ${w.abs.toExponential(3)} (${w.ratio.toPrecision(3)}× the ${dtype} tolerance ${TOL[dtype]}·max(|want|, ${FLOOR})) at ${w.where}: got ${w.got}, want ${w.want}`;
}

// ---------------------------------------------------------------------------------------------
// Golden steps

test('fixture: the golden file has the cases the suite relies on', () => {
  const names = fixture.cases.map((c) => c.name);
  assert.ok(names.length >= 20, `${names.length} cases`);
  for (const cls of ['SGD', 'Adam', 'AdamW', 'RMSprop', 'Adagrad']) assert.ok(fixture.cases.some((c) => c.className === cls), cls);
  for (const opt of ['nesterov', 'dampening', 'weightDecay', 'amsgrad', 'centered', 'momentum', 'lrDecay', 'initialAccumulatorValue', 'clipNorm', 'clipValue', 'schedule']) {
    assert.ok(fixture.cases.some((c) => opt in c.config), `a case with ${opt}`);
  }
  for (const c of fixture.cases) assert.ok(c.grads.length >= 3 && c.expected.length === c.grads.length && c.lrs.length === c.grads.length, c.name);
});

for (const c of fixture.cases) {
  for (const dtype of ['float64', 'float32'] as const) {
    test(`golden ${c.name} [${c.torch}], ${dtype}: ${c.grads.length} steps match torch.optim`, (t) => {
      const { worst, lrWorst, opt } = replay(c, dtype);
      t.diagnostic(describeWorst(worst, dtype));
      assert.ok(worst.ratio <= 1, `${c.name} (${dtype}): ${describeWorst(worst, dtype)}`);
      assert.ok(lrWorst <= 1e-12, `${c.name}: learning rate differs from torch's by ${lrWorst} (relative)`);
      assert.equal(opt.iterations, c.grads.length);
      assert.equal(opt.className, c.className);
    });
  }
}

/** Each option a case sets, dropped (back to its default), or the rate nudged by 0.1 %. */
function variants(c: GoldenCase): [string, Record<string, unknown>][] {
  const out: [string, Record<string, unknown>][] = [];
  for (const key of Object.keys(c.config)) {
    if (key === 'learningRate' || key === 'lr') continue;
    const { [key]: _dropped, ...rest } = c.config;
    out.push([`without ${key}`, rest]);
  }
  const rateKey = 'lr' in c.config ? 'lr' : 'learningRate';
  const rate = (c.config[rateKey] as number | undefined) ?? optimizerFromConfig({ className: c.className, config: c.config }).learningRate;
  out.push([`${rateKey} × 1.001`, { ...c.config, [rateKey]: rate * 1.001 }]);
  return out;
}

test('golden: the comparison can fail — every option a case sets moves the result far outside the tolerance', () => {
  let checked = 0;
  for (const c of fixture.cases) {
    for (const [label, config] of variants(c)) {
      let opt: Optimizer;
      try {
        opt = optimizerFromConfig({ className: c.className, config });
      } catch {
        continue;  // e.g. nesterov without momentum: not a valid variant
      }
      const { worst } = replay(c, 'float64', opt);
      assert.ok(worst.ratio > 1000, `${c.name} ${label}: still within 1000× the tolerance (${describeWorst(worst, 'float64')})`);
      checked++;
    }
  }
  assert.ok(checked >= 35, `${checked} variants checked`);
});

// ---------------------------------------------------------------------------------------------
// Schedules

const near = (got: number, want: number, what: string): void => {
  assert.ok(Math.abs(got - want) <= 1e-15 * Math.max(Math.abs(want), 1e-300) || got === want, `${what}: got ${got}, want ${want}`);
};

test('stepDecay: base · gamma^floor(iteration / stepSize), gamma 0.1 by default', () => {
  const s = stepDecay({ stepSize: 3, gamma: 0.5 });
  assert.equal(s.className, 'StepDecay');
  for (const [it, want] of [[0, 0.1], [2, 0.1], [3, 0.05], [5, 0.05], [6, 0.025], [10, 0.0125]] as const) near(s.at(0.1, it), want, `it ${it}`);
  near(stepDecay({ stepSize: 1 }).at(2, 2), 2 * 0.1 ** 2, 'default gamma');
  assert.deepEqual(stepDecay({ stepSize: 4 }).getConfig(), { className: 'StepDecay', config: { stepSize: 4, gamma: 0.1 } });
});

test('exponentialDecay: base · gamma^(iteration / decaySteps), decaySteps 1 by default', () => {
  const s = exponentialDecay({ gamma: 0.5, decaySteps: 2 });
  assert.equal(s.className, 'ExponentialDecay');
  near(s.at(1, 0), 1, 'it 0');
  near(s.at(1, 1), Math.SQRT1_2, 'it 1');
  near(s.at(3, 4), 0.75, 'it 4');
  near(exponentialDecay({ gamma: 0.9 }).at(0.01, 3), 0.01 * 0.9 ** 3, 'default decaySteps');
  assert.deepEqual(exponentialDecay({ gamma: 0.9 }).getConfig(), { className: 'ExponentialDecay', config: { gamma: 0.9, decaySteps: 1 } });
});

test('cosineDecay: linear warm-up to base, cosine to minLearningRate at totalSteps, then minLearningRate', () => {
  const s = cosineDecay({ totalSteps: 10, warmupSteps: 2, minLearningRate: 0.01 });
  assert.equal(s.className, 'CosineDecay');
  near(s.at(1, 0), 0.5, 'first warm-up step');
  near(s.at(1, 1), 1, 'last warm-up step');
  near(s.at(1, 2), 1, 'cosine start');
  near(s.at(1, 6), 0.01 + 0.99 * 0.5, 'cosine half-way');
  near(s.at(1, 9), 0.01 + (0.99 * (1 + Math.cos((Math.PI * 7) / 8))) / 2, 'last cosine step');
  for (const it of [10, 11, 1000]) near(s.at(1, it), 0.01, `it ${it}`);
  const plain = cosineDecay({ totalSteps: 4 });
  near(plain.at(2, 0), 2, 'no warm-up: base at 0');
  near(plain.at(2, 2), 1, 'no warm-up: half-way');
  near(plain.at(2, 4), 0, 'minLearningRate 0 by default');
  assert.deepEqual(plain.getConfig(), { className: 'CosineDecay', config: { totalSteps: 4, warmupSteps: 0, minLearningRate: 0 } });
});

test('schedules: options are checked (RangeError naming the option, TypeError for unknown ones)', () => {
  assert.throws(() => stepDecay({ stepSize: 0 }), { name: 'RangeError', message: /^stepDecay: stepSize: expected an integer ≥ 1, got 0/ });
  assert.throws(() => stepDecay({ stepSize: 1.5 }), { name: 'RangeError', message: /stepDecay: stepSize/ });
  assert.throws(() => stepDecay({} as never), { name: 'RangeError', message: /stepDecay: stepSize: .*got undefined/ });
  assert.throws(() => stepDecay({ stepSize: 2, gamma: -1 }), { name: 'RangeError', message: /stepDecay: gamma: expected a number in \(0, ∞\)/ });
  assert.throws(() => stepDecay({ stepSize: 2, step: 3 } as never), { name: 'TypeError', message: /^stepDecay: options\.step: unknown option; valid options: stepSize, gamma$/ });
  assert.throws(() => stepDecay(null as never), { name: 'TypeError', message: /stepDecay: options: expected an object/ });
  assert.throws(() => exponentialDecay({} as never), { name: 'RangeError', message: /exponentialDecay: gamma/ });
  assert.throws(() => exponentialDecay({ gamma: 0.5, decaySteps: 0 }), { name: 'RangeError', message: /exponentialDecay: decaySteps/ });
  assert.throws(() => exponentialDecay({ gamma: NaN }), { name: 'RangeError', message: /exponentialDecay: gamma/ });
  assert.throws(() => exponentialDecay({ gamma: 0.5, staircase: true } as never), { name: 'TypeError', message: /exponentialDecay: options\.staircase: unknown option; valid options: gamma, decaySteps/ });
  assert.throws(() => cosineDecay({ totalSteps: 5, warmupSteps: 5 }), { name: 'RangeError', message: /cosineDecay: warmupSteps: expected an integer below totalSteps \(5\), got 5/ });
  assert.throws(() => cosineDecay({ totalSteps: 5, minLearningRate: -0.1 }), { name: 'RangeError', message: /cosineDecay: minLearningRate/ });
  assert.throws(() => cosineDecay({ totalSteps: 0 }), { name: 'RangeError', message: /cosineDecay: totalSteps/ });
  assert.throws(() => cosineDecay({ totalSteps: 5, alpha: 0 } as never), { name: 'TypeError', message: /cosineDecay: options\.alpha: unknown option; valid options: totalSteps, warmupSteps, minLearningRate/ });
  const s = stepDecay({ stepSize: 2 });
  assert.throws(() => s.at(0.1, -1), { name: 'RangeError', message: /StepDecay\.at: iteration/ });
  assert.throws(() => s.at(0.1, 0.5), { name: 'RangeError', message: /StepDecay\.at: iteration/ });
  assert.throws(() => s.at(NaN, 1), { name: 'RangeError', message: /StepDecay\.at: base/ });
});

test('schedules: getConfig → JSON → scheduleFromConfig gives the same schedule', () => {
  const schedules: LearningRateSchedule[] = [
    stepDecay({ stepSize: 3, gamma: 0.7 }), exponentialDecay({ gamma: 0.95, decaySteps: 10 }), cosineDecay({ totalSteps: 20, warmupSteps: 3, minLearningRate: 1e-4 }),
  ];
  for (const s of schedules) {
    const again = scheduleFromConfig(JSON.parse(JSON.stringify(s.getConfig())));
    assert.equal(again.className, s.className);
    assert.deepEqual(again.getConfig(), s.getConfig());
    for (let it = 0; it < 25; it++) assert.equal(again.at(0.01, it), s.at(0.01, it), `${s.className} at ${it}`);
  }
  assert.throws(() => scheduleFromConfig({ className: 'OneCycle', config: {} }), { name: 'TypeError', message: /scheduleFromConfig: className: unknown schedule "OneCycle"; expected one of StepDecay, ExponentialDecay, CosineDecay/ });
  assert.throws(() => scheduleFromConfig({ className: 'StepDecay', config: null as never }), { name: 'TypeError', message: /scheduleFromConfig: config/ });
  assert.throws(() => scheduleFromConfig({ className: 'toString', config: {} }), { name: 'TypeError', message: /unknown schedule/ });
  assert.throws(() => scheduleFromConfig({ className: 'StepDecay', config: { stepSize: -1 } }), { name: 'RangeError', message: /stepDecay: stepSize/ });
});

test('an optimizer with a schedule: currentLearningRate() = schedule.at(learningRate, iterations); lowering learningRate rescales it', () => {
  const schedule = stepDecay({ stepSize: 2, gamma: 0.5 });
  const opt = new SGD({ learningRate: 0.4, schedule });
  const p = { w: Tensor.from([0], [1], 'float64') };
  const g = { w: Tensor.from([1], [1], 'float64') };
  const used: number[] = [];
  for (let i = 0; i < 5; i++) {
    assert.equal(opt.currentLearningRate(), schedule.at(opt.learningRate, i));
    const before = p.w.data[0];
    opt.step(p, g);
    used.push(before - p.w.data[0]);
    if (i === 2) opt.learningRate = 0.2;  // as ReduceLROnPlateau does
  }
  [0.4, 0.4, 0.2, 0.1, 0.05].forEach((want, i) => assert.ok(Math.abs(used[i] - want) < 1e-15, `step ${i} moved by ${used[i]}, want ${want}`));
  assert.equal(opt.learningRate, 0.2, 'the base rate is not changed by the schedule');
  assert.equal(new Adam().currentLearningRate(), 1e-3, 'no schedule: learningRate');
  const bad: LearningRateSchedule = { className: 'Broken', at: () => NaN, getConfig: () => ({ className: 'Broken', config: {} }) };
  const broken = new Adam({ schedule: bad });
  const before = Float64Array.from(p.w.data);
  assert.throws(() => broken.step(p, g), { name: 'RangeError', message: /Adam: the schedule \(Broken\) gave NaN at iteration 0/ });
  assert.deepEqual(p.w.data, before, 'nothing changed');
  assert.equal(broken.iterations, 0);
});

// ---------------------------------------------------------------------------------------------
// State: getState / setState

const SHAPES: Record<string, number[]> = { weight: [3, 4], bias: [4], kernel: [2, 3, 2] };

/** Deterministic pseudo-random values in [-1, 1). */
function values(seed: number, n: number): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return (s / 2 ** 32) * 2 - 1;
  });
}

function makeParams(dtype: DType, seed = 1): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(SHAPES).map(([k, s], i) => [k, Tensor.from(values(seed * 100 + i, s.reduce((a, b) => a * b, 1)), s, dtype)]));
}
function makeGrads(step: number, dtype: DType, scale = 1): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(SHAPES).map(([k, s], i) => [k, Tensor.from(values(7919 * (step + 1) + i, s.reduce((a, b) => a * b, 1)).map((v) => v * scale), s, dtype)]));
}
function copyParams(params: Record<string, Tensor>): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(params).map(([k, t]) => [k, t.clone()]));
}

/** Bit-for-bit equality of two parameter records. */
function assertSameParams(got: Record<string, Tensor>, want: Record<string, Tensor>, what: string): void {
  for (const [k, w] of Object.entries(want)) {
    const g = got[k];
    assert.equal(g.dtype, w.dtype, `${what}: ${k} dtype`);
    for (let i = 0; i < w.data.length; i++) {
      if (!Object.is(g.data[i], w.data[i])) assert.fail(`${what}: ${k}[${i}] is ${g.data[i]}, want ${w.data[i]} (bit-identical)`);
    }
  }
}

/** Every optimizer configuration whose state matters, each with a schedule and clipping in some. */
const STATEFUL: [string, () => Optimizer][] = [
  ['SGD plain', () => new SGD({ lr: 0.1 })],
  ['SGD momentum + dampening + weightDecay + stepDecay', () => new SGD({ learningRate: 0.1, momentum: 0.9, dampening: 0.2, weightDecay: 0.01, schedule: stepDecay({ stepSize: 2 }) })],
  ['SGD nesterov + clipNorm', () => new SGD({ learningRate: 0.05, momentum: 0.8, nesterov: true, clipNorm: 0.5 })],
  ['Adam amsgrad + cosineDecay', () => new Adam({ learningRate: 0.01, beta2: 0.9, amsgrad: true, schedule: cosineDecay({ totalSteps: 6, warmupSteps: 1 }) })],
  ['AdamW + clipValue', () => new AdamW({ learningRate: 0.02, clipValue: 0.3 })],
  ['RMSprop centered + momentum', () => new RMSprop({ learningRate: 0.01, rho: 0.9, momentum: 0.5, centered: true, weightDecay: 0.01 })],
  ['Adagrad lrDecay + initialAccumulatorValue + exponentialDecay', () => new Adagrad({ learningRate: 0.1, lrDecay: 0.3, initialAccumulatorValue: 0.1, schedule: exponentialDecay({ gamma: 0.9 }) })],
];

for (const dtype of ['float64', 'float32'] as const) {
  test(`getState → new optimizer → setState continues bit-identically to an uninterrupted run (${dtype})`, () => {
    for (const [label, make] of STATEFUL) {
      const steps = 6, cut = 3;
      const whole = make();
      const wholeParams = makeParams(dtype);
      for (let s = 0; s < steps; s++) whole.step(wholeParams, makeGrads(s, dtype, s === 1 ? 3 : 1));

      const first = make();
      const firstParams = makeParams(dtype);
      for (let s = 0; s < cut; s++) first.step(firstParams, makeGrads(s, dtype, s === 1 ? 3 : 1));
      const state = first.getState(firstParams);
      assert.equal(state.iterations, cut, label);
      for (const [name, slots] of Object.entries(state.slots)) {
        for (const [slot, v] of Object.entries(slots)) {
          assert.ok(v instanceof Float64Array, `${label}: ${name}/${slot} is a Float64Array`);
          assert.equal(v.length, firstParams[name].size, `${label}: ${name}/${slot} length`);
        }
      }
      // The optimizer that resumes is rebuilt from its config, and the parameters are other tensors.
      const resumed = optimizerFromConfig(JSON.parse(JSON.stringify(first.getConfig())));
      const resumedParams = copyParams(firstParams);
      resumed.setState(resumedParams, state);
      assert.equal(resumed.iterations, cut);
      assert.equal(resumed.currentLearningRate(), first.currentLearningRate(), `${label}: the schedule resumes`);
      for (const slots of Object.values(state.slots)) for (const v of Object.values(slots)) v.fill(1234);  // setState copied them
      for (let s = cut; s < steps; s++) resumed.step(resumedParams, makeGrads(s, dtype, s === 1 ? 3 : 1));
      assertSameParams(resumedParams, wholeParams, `${label} (${dtype})`);
      assert.equal(resumed.iterations, steps);
      assert.deepEqual(resumed.getState(resumedParams), whole.getState(wholeParams), `${label}: the states agree`);
    }
  });
}

test('getState returns copies and covers parameters not stepped yet', () => {
  const adam = new Adam({ learningRate: 0.1 });
  const params = makeParams('float64');
  adam.step(params, makeGrads(0, 'float64'));
  const state = adam.getState(params);
  assert.deepEqual(Object.keys(state.slots), ['weight', 'bias', 'kernel']);
  assert.deepEqual(Object.keys(state.slots.weight), ['m', 'v']);
  assert.deepEqual(state.extra, { 'weight/step': 1, 'bias/step': 1, 'kernel/step': 1 });
  state.slots.weight.m.fill(99);
  assert.notEqual(adam.getState(params).slots.weight.m[0], 99, 'mutating the returned state changes nothing');

  const fresh = new Adagrad({ initialAccumulatorValue: 0.5 }).getState({ w: Tensor.zeros([2, 2], 'float64') });
  assert.deepEqual(fresh, { iterations: 0, learningRate: 0.01, slots: { w: { sum: new Float64Array(4).fill(0.5) } }, extra: { 'w/step': 0 } });
  assert.deepEqual(new SGD({ lr: 0.1 }).getState({ w: Tensor.zeros([2]) }).slots, {}, 'plain SGD keeps no slots');
  assert.deepEqual(Object.keys(new RMSprop({ centered: true, momentum: 0.1 }).getState({ w: Tensor.zeros([2]) }).slots.w), ['squareAvg', 'gradAvg', 'momentum']);
  assert.deepEqual(Object.keys(new AdamW({ amsgrad: true }).getState({ w: Tensor.zeros([2]) }).slots.w), ['m', 'v', 'vmax']);
});

test('setState refuses a bad state (naming the parameter and slot) without changing anything', () => {
  const make = (): Adam => new Adam({ learningRate: 0.05, amsgrad: true });
  const target = make(), twin = make();
  const params = makeParams('float64'), twinParams = makeParams('float64');
  for (let s = 0; s < 2; s++) {
    target.step(params, makeGrads(s, 'float64'));
    twin.step(twinParams, makeGrads(s, 'float64'));
  }
  const good = (): OptimizerState => {
    // A valid state that differs from the current one, so a partial restore would show.
    const other = make();
    const p = makeParams('float64', 5);
    for (let s = 0; s < 4; s++) other.step(p, makeGrads(s + 10, 'float64'));
    return { ...other.getState(p), learningRate: 0.5 };
  };
  const cases: [string, (s: OptimizerState) => unknown, RegExp, string][] = [
    ['a slot of the wrong size', (s) => (s.slots.kernel.v = new Float64Array(11)), /^Adam\.setState: state\.slots\.kernel\.v: expected 12 values \(params\.kernel has shape \[2, 3, 2\]\), got 11$/, 'RangeError'],
    ['a missing slot', (s) => delete s.slots.bias.vmax, /^Adam\.setState: state\.slots\.bias\.vmax is missing$/, 'RangeError'],
    ['a missing parameter', (s) => delete s.slots.kernel, /^Adam\.setState: state\.slots\.kernel is missing \(Adam keeps m, v, vmax per parameter\)$/, 'RangeError'],
    ['an unknown slot', (s) => (s.slots.weight.momentum = new Float64Array(12)), /state\.slots\.weight\.momentum: not a slot of this Adam \(it keeps m, v, vmax\)/, 'RangeError'],
    ['an unknown parameter', (s) => (s.slots.gamma = { m: new Float64Array(1) }), /state\.slots\.gamma: "gamma" is not in params \(weight, bias, kernel\)/, 'RangeError'],
    ['a slot that is not a Float64Array', (s) => (s.slots.kernel.m = new Float32Array(12) as never), /state\.slots\.kernel\.m: expected a Float64Array/, 'TypeError'],
    ['negative iterations', (s) => (s.iterations = -1), /state\.iterations: expected an integer ≥ 0, got -1/, 'RangeError'],
    ['a bad learning rate', (s) => (s.learningRate = 0), /state\.learningRate: expected a number in \(0, ∞\), got 0/, 'RangeError'],
    ['a bad step count', (s) => (s.extra!['kernel/step'] = 1.5), /state\.extra\["kernel\/step"\]: expected an integer ≥ 0, got 1\.5/, 'RangeError'],
    ['an unknown extra entry', (s) => (s.extra!.gamma = 1), /state\.extra\["gamma"\]: expected '<parameter>\/step'/, 'RangeError'],
  ];
  for (const [label, spoil, message, name] of cases) {
    const state = good();
    spoil(state);
    assert.throws(() => target.setState(params, state), { name, message }, label);
  }
  assert.throws(() => target.setState(params, null as never), { name: 'TypeError', message: /Adam\.setState: state: expected the output of getState\(\)/ });
  assert.throws(() => target.setState({ w: [1] as never }, good()), { name: 'TypeError', message: /Adam\.setState: params\.w must be a Tensor/ });
  assert.equal(target.iterations, 2);
  assert.equal(target.learningRate, 0.05);
  for (let s = 2; s < 5; s++) {
    target.step(params, makeGrads(s, 'float64'));
    twin.step(twinParams, makeGrads(s, 'float64'));
  }
  assertSameParams(params, twinParams, 'after refused setStates');
  // And a good one is taken.
  const state = good();
  target.setState(params, state);
  assert.equal(target.iterations, 4);
  assert.equal(target.learningRate, 0.5);
  assert.deepEqual(target.getState(params).slots, state.slots);
});

test('setState: a plain SGD takes a state without slots; missing step counts default to iterations', () => {
  const sgd = new SGD({ lr: 0.1 });
  const w = Tensor.from([1, 2], [2], 'float64');
  sgd.setState({ w }, { iterations: 7, learningRate: 0.3, slots: {} });
  assert.equal(sgd.iterations, 7);
  assert.equal(sgd.learningRate, 0.3);
  // Adam: the bias correction uses the restored per-parameter step (iterations when extra lacks it).
  const m = new Float64Array([0.5]), v = new Float64Array([0.25]);
  const adam = new Adam({ learningRate: 0.1 });
  const p = Tensor.from([0], [1], 'float64');
  adam.setState({ p }, { iterations: 3, learningRate: 0.1, slots: { p: { m, v } } });
  adam.step({ p }, { p: Tensor.from([1], [1], 'float64') });
  const [m4, v4] = [0.9 * 0.5 + 0.1, 0.999 * 0.25 + 0.001];
  const want = -(0.1 / (1 - 0.9 ** 4)) * m4 / (Math.sqrt(v4) / Math.sqrt(1 - 0.999 ** 4) + 1e-8);
  assert.ok(Math.abs(p.data[0] - want) < 1e-15, `got ${p.data[0]}, want ${want}`);
});

// ---------------------------------------------------------------------------------------------
// Config

test('getConfig: every option with its default filled in', () => {
  const common = { weightDecay: 0 };
  assert.deepEqual(new SGD({ lr: 0.1 }).getConfig(), { className: 'SGD', config: { learningRate: 0.1, ...common, momentum: 0, dampening: 0, nesterov: false } });
  assert.deepEqual(new Adam().getConfig(), { className: 'Adam', config: { learningRate: 1e-3, ...common, beta1: 0.9, beta2: 0.999, eps: 1e-8, amsgrad: false } });
  assert.deepEqual(new AdamW().getConfig(), { className: 'AdamW', config: { learningRate: 1e-3, weightDecay: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, amsgrad: false } });
  assert.deepEqual(new RMSprop().getConfig(), { className: 'RMSprop', config: { learningRate: 1e-2, ...common, rho: 0.99, eps: 1e-8, momentum: 0, centered: false } });
  assert.deepEqual(new Adagrad().getConfig(), { className: 'Adagrad', config: { learningRate: 1e-2, ...common, lrDecay: 0, initialAccumulatorValue: 0, eps: 1e-10 } });
  assert.deepEqual(new Adam({ clipNorm: 1, clipValue: 0.5, schedule: stepDecay({ stepSize: 10 }) }).getConfig().config, {
    learningRate: 1e-3, clipNorm: 1, clipValue: 0.5, weightDecay: 0, schedule: { className: 'StepDecay', config: { stepSize: 10, gamma: 0.1 } }, beta1: 0.9, beta2: 0.999, eps: 1e-8, amsgrad: false,
  });
});

test('getConfig → JSON → optimizerFromConfig: the same optimizer (config and steps)', () => {
  for (const [label, make] of STATEFUL) {
    const a = make();
    const config = JSON.parse(JSON.stringify(a.getConfig()));
    const b = optimizerFromConfig(config);
    assert.equal(b.className, a.className, label);
    assert.deepEqual(b.getConfig(), a.getConfig(), label);
    const pa = makeParams('float64'), pb = makeParams('float64');
    for (let s = 0; s < 4; s++) {
      a.step(pa, makeGrads(s, 'float64', 2));
      b.step(pb, makeGrads(s, 'float64', 2));
    }
    assertSameParams(pb, pa, label);
  }
  // A base rate lowered by ReduceLROnPlateau is what the config records.
  const adam = new Adam({ lr: 0.1 });
  adam.learningRate = 0.01;
  assert.equal(optimizerFromConfig(adam.getConfig()).learningRate, 0.01);
  // A schedule object (not only its config) is taken too.
  assert.equal(optimizerFromConfig({ className: 'SGD', config: { lr: 1, schedule: stepDecay({ stepSize: 1, gamma: 0.5 }) } }).currentLearningRate(), 1);
});

test('optimizerFromConfig: an unknown className or a bad config is a TypeError; options are checked', () => {
  assert.throws(() => optimizerFromConfig({ className: 'Nadam', config: {} }), { name: 'TypeError', message: /^optimizerFromConfig: className: unknown optimizer "Nadam"; expected one of SGD, Adam, AdamW, RMSprop, Adagrad$/ });
  assert.throws(() => optimizerFromConfig({ className: 'constructor', config: {} }), { name: 'TypeError', message: /unknown optimizer/ });
  assert.throws(() => optimizerFromConfig({ className: 'Adam', config: [] as never }), { name: 'TypeError', message: /optimizerFromConfig: config: expected an object/ });
  assert.throws(() => optimizerFromConfig(null as never), { name: 'TypeError', message: /optimizerFromConfig: expected \{ className, config \}/ });
  assert.throws(() => optimizerFromConfig({ className: 'Adam', config: { beta3: 1 } }), { name: 'TypeError', message: /Adam: options\.beta3: unknown option/ });
  assert.throws(() => optimizerFromConfig({ className: 'Adam', config: { schedule: { className: 'Warp', config: {} } } }), { name: 'TypeError', message: /unknown schedule "Warp"/ });
  assert.throws(() => optimizerFromConfig({ className: 'SGD', config: {} }), { name: 'RangeError', message: /SGD: learningRate/ });
});

// ---------------------------------------------------------------------------------------------
// Options

test('unknown options are TypeErrors naming them and listing the valid ones', () => {
  const common = 'learningRate, lr, clipNorm, clipValue, weightDecay, schedule';
  const cases: [string, () => unknown, string][] = [
    ['SGD', () => new SGD({ lr: 0.1, decay: 0.1 } as never), `SGD: options.decay: unknown option; valid options: ${common}, momentum, dampening, nesterov`],
    ['Adam', () => new Adam({ epsilon: 1e-7 } as never), `Adam: options.epsilon: unknown option; valid options: ${common}, beta1, beta2, eps, amsgrad`],
    ['AdamW', () => new AdamW({ betas: [0.9, 0.99] } as never), `AdamW: options.betas: unknown option; valid options: ${common}, beta1, beta2, eps, amsgrad`],
    ['RMSprop', () => new RMSprop({ alpha: 0.9 } as never), `RMSprop: options.alpha: unknown option; valid options: ${common}, rho, eps, momentum, centered`],
    ['Adagrad', () => new Adagrad({ lr_decay: 0.1 } as never), `Adagrad: options.lr_decay: unknown option; valid options: ${common}, lrDecay, initialAccumulatorValue, eps`],
  ];
  for (const [label, make, message] of cases) assert.throws(make, { name: 'TypeError', message }, label);
  assert.throws(() => new Adam({ foo: 1, bar: 2 } as never), { name: 'TypeError', message: /^Adam: options\.foo, Adam: options\.bar: unknown options; valid options/ });
  assert.throws(() => new RMSprop([] as never), { name: 'TypeError', message: /RMSprop: options: expected an object/ });
  assert.throws(() => new SGD(undefined as never), { name: 'TypeError', message: /SGD: options: expected an object with learningRate/ });
});

test('learningRate and lr: aliases; both given is a TypeError naming both', () => {
  for (const C of [SGD, Adam, AdamW, RMSprop, Adagrad]) {
    const name = C.name;
    assert.throws(() => new C({ learningRate: 0.1, lr: 0.1 }), { name: 'TypeError', message: new RegExp(`^${name}: options\\.learningRate and options\\.lr are the same option`) }, name);
    const a = new C({ lr: 0.25 }), b = new C({ learningRate: 0.25 });
    assert.equal(a.learningRate, 0.25, name);
    assert.deepEqual(a.getConfig(), b.getConfig(), `${name}: lr is stored as learningRate`);
    (a as unknown as { lr: number }).lr = 0.5;
    assert.equal(a.learningRate, 0.5, `${name}: the lr property is learningRate`);
    assert.throws(() => (a.learningRate = -1), { name: 'RangeError', message: new RegExp(`^${name}: learningRate: expected a number in \\(0, ∞\\), got -1`) });
    assert.throws(() => (a.learningRate = NaN), { name: 'RangeError' });
    assert.equal(a.learningRate, 0.5, 'a refused rate changes nothing');
  }
  assert.throws(() => new SGD({} as never), { name: 'RangeError', message: /^SGD: learningRate: expected a number in \(0, ∞\) \(required; lr is an alias\), got undefined$/ });
  assert.throws(() => new Adam({ lr: 0 }), { name: 'RangeError', message: /^Adam: lr: expected a number in \(0, ∞\), got 0$/ });
});

test('numeric options are RangeErrors naming the option; booleans and schedules TypeErrors', () => {
  const range: [string, () => unknown, RegExp][] = [
    ['SGD momentum', () => new SGD({ lr: 0.1, momentum: 1 }), /^SGD: momentum: expected a number in \[0, 1\), got 1$/],
    ['SGD dampening', () => new SGD({ lr: 0.1, momentum: 0.5, dampening: 1.5 }), /^SGD: dampening: expected a number in \[0, 1\]/],
    ['SGD weightDecay', () => new SGD({ lr: 0.1, weightDecay: -0.1 }), /^SGD: weightDecay: expected a number in \[0, ∞\)/],
    ['SGD clipNorm', () => new SGD({ lr: 0.1, clipNorm: 0 }), /^SGD: clipNorm: expected a number in \(0, ∞\), got 0/],
    ['SGD clipValue', () => new SGD({ lr: 0.1, clipValue: Infinity }), /^SGD: clipValue: expected a number in \(0, ∞\), got Infinity/],
    ['SGD nesterov without momentum', () => new SGD({ lr: 0.1, nesterov: true }), /^SGD: nesterov: needs momentum > 0 and dampening 0, got momentum 0, dampening 0$/],
    ['SGD nesterov with dampening', () => new SGD({ lr: 0.1, nesterov: true, momentum: 0.9, dampening: 0.1 }), /^SGD: nesterov: needs momentum > 0 and dampening 0/],
    ['Adam beta1', () => new Adam({ beta1: -0.1 }), /^Adam: beta1: expected a number in \[0, 1\)/],
    ['Adam beta2', () => new Adam({ beta2: 1 }), /^Adam: beta2: expected a number in \[0, 1\)/],
    ['Adam eps', () => new Adam({ eps: -1 }), /^Adam: eps: expected a number in \[0, ∞\)/],
    ['AdamW weightDecay', () => new AdamW({ weightDecay: NaN }), /^AdamW: weightDecay: expected a number in \[0, ∞\), got NaN/],
    ['AdamW beta1', () => new AdamW({ beta1: 2 }), /^AdamW: beta1/],
    ['RMSprop rho', () => new RMSprop({ rho: 1 }), /^RMSprop: rho: expected a number in \[0, 1\)/],
    ['RMSprop momentum', () => new RMSprop({ momentum: -1 }), /^RMSprop: momentum/],
    ['RMSprop eps', () => new RMSprop({ eps: '1e-8' as never }), /^RMSprop: eps: expected a number in \[0, ∞\), got "1e-8"/],
    ['Adagrad lrDecay', () => new Adagrad({ lrDecay: -1 }), /^Adagrad: lrDecay/],
    ['Adagrad initialAccumulatorValue', () => new Adagrad({ initialAccumulatorValue: -0.1 }), /^Adagrad: initialAccumulatorValue/],
    ['Adagrad eps', () => new Adagrad({ eps: -1e-10 }), /^Adagrad: eps/],
  ];
  for (const [label, make, message] of range) assert.throws(make, { name: 'RangeError', message }, label);
  assert.throws(() => new SGD({ lr: 0.1, momentum: 0.9, nesterov: 'yes' as never }), { name: 'TypeError', message: /^SGD: nesterov: expected a boolean, got "yes"/ });
  assert.throws(() => new Adam({ amsgrad: 1 as never }), { name: 'TypeError', message: /^Adam: amsgrad: expected a boolean, got 1/ });
  assert.throws(() => new RMSprop({ centered: null as never }), { name: 'TypeError', message: /^RMSprop: centered: expected a boolean, got null/ });
  assert.throws(() => new Adam({ schedule: { className: 'StepDecay', config: { stepSize: 1 } } as never }), { name: 'TypeError', message: /^Adam: options\.schedule: expected a schedule/ });
  assert.throws(() => new Adagrad({ schedule: (() => 0.1) as never }), { name: 'TypeError', message: /^Adagrad: options\.schedule/ });
});

// ---------------------------------------------------------------------------------------------
// Steps and clipping

const snapshot = (rec: Record<string, Tensor>): Record<string, number[]> => Object.fromEntries(Object.entries(rec).map(([k, t]) => [k, Array.from(t.data)]));

test('clipNorm and clipValue never modify the gradient tensors passed to step()', () => {
  for (const dtype of ['float64', 'float32'] as const) {
    for (const opt of [new Adam({ clipNorm: 0.1 }), new SGD({ lr: 0.1, clipValue: 0.05 }), new RMSprop({ clipValue: 0.2, clipNorm: 0.3 })]) {
      const params = makeParams(dtype);
      const grads = makeGrads(0, dtype, 5);
      const before = snapshot(grads);
      opt.step(params, grads);
      assert.deepEqual(snapshot(grads), before, `${opt.className} (${dtype})`);
    }
  }
});

test('clipNorm: the same as clipGradNorm on copies and then an unclipped step; below the norm, a plain step', () => {
  for (const scale of [5, 0.01]) {
    const clipped = new Adam({ learningRate: 0.1, clipNorm: 1 });
    const plain = new Adam({ learningRate: 0.1 });
    const p1 = makeParams('float64'), p2 = makeParams('float64');
    for (let s = 0; s < 3; s++) {
      const g = makeGrads(s, 'float64', scale);
      clipped.step(p1, g);
      const copies = Object.fromEntries(Object.entries(g).map(([k, t]) => [k, t.clone()]));
      const norm = clipGradNorm(copies, 1);
      assert.ok(scale > 1 ? norm > 1 : norm < 1, `norm ${norm}`);
      plain.step(p2, copies);
    }
    assertSameParams(p1, p2, `clipNorm (gradient scale ${scale})`);
  }
});

test('clipValue: the same as clamping copies and then an unclipped step; clipValue applies before clipNorm', () => {
  const clipped = new SGD({ lr: 0.1, momentum: 0.9, clipValue: 0.3, clipNorm: 0.5 });
  const plain = new SGD({ lr: 0.1, momentum: 0.9 });
  const p1 = makeParams('float32'), p2 = makeParams('float32');
  for (let s = 0; s < 3; s++) {
    const g = makeGrads(s, 'float32');
    clipped.step(p1, g);
    const copies = Object.fromEntries(Object.entries(g).map(([k, t]) => [k, Tensor.from(Float64Array.from(t.data, (v) => Math.min(0.3, Math.max(-0.3, v))), t.shape)]));
    assert.ok(clipGradNorm(copies, 0.5) > 0.5);
    plain.step(p2, copies);
  }
  assertSameParams(p1, p2, 'clipValue then clipNorm');
});

test('step(): counts iterations, tells the parameters\' owner, takes mixed dtypes; a failed step changes nothing', () => {
  const version = new WeightVersion();
  const params = makeParams('float32');
  trackParameters(Object.values(params), version);
  const opt = new RMSprop({ momentum: 0.5 });
  opt.step(params, makeGrads(0, 'float64'));  // float64 gradients of float32 parameters
  assert.equal(opt.iterations, 1);
  assert.equal(version.value, 3, 'parameterChanged once per updated tensor');
  const twin = new RMSprop({ momentum: 0.5 });
  const twinParams = makeParams('float32');
  twin.step(twinParams, makeGrads(0, 'float64'));

  const before = snapshot(params);
  const { kernel: _k, ...missing } = makeGrads(1, 'float64');
  assert.throws(() => opt.step(params, missing), { name: 'RangeError', message: /^RMSprop\.step: grads\.kernel is missing/ });
  assert.throws(() => opt.step(params, { ...makeGrads(1, 'float64'), bias: Tensor.zeros([5]) }), { name: 'RangeError', message: /RMSprop\.step: grads\.bias/ });
  assert.throws(() => opt.step(params, { ...makeGrads(1, 'float64'), extra: Tensor.zeros([1]) }), { name: 'RangeError', message: /grads has key\(s\) extra/ });
  assert.throws(() => opt.step({ ...params, w: [1] as never }, makeGrads(1, 'float64')), { name: 'TypeError', message: /params\.w must be a Tensor/ });
  assert.deepEqual(snapshot(params), before);
  assert.equal(opt.iterations, 1);
  assert.equal(version.value, 3);
  for (let s = 1; s < 3; s++) {
    opt.step(params, makeGrads(s, 'float64'));
    twin.step(twinParams, makeGrads(s, 'float64'));
  }
  assertSameParams(params, twinParams, 'the refused steps left no trace in the state');
});

test('per-parameter state follows the Tensor: a new tensor under an old key starts fresh', () => {
  const adagrad = new Adagrad({ learningRate: 0.1, lrDecay: 1 });
  const a = Tensor.from([0], [1], 'float64');
  for (let i = 0; i < 3; i++) adagrad.step({ w: a }, { w: Tensor.from([1], [1], 'float64') });
  const b = Tensor.from([0], [1], 'float64');
  adagrad.step({ w: b }, { w: Tensor.from([2], [1], 'float64') });
  // First step of b: clr = lr (t = 1), sum = 4: b = −0.1 · 2 / (2 + 1e-10).
  assert.equal(b.data[0], -(0.1 * 2) / (2 + 1e-10));
  assert.equal(adagrad.iterations, 4);
  assert.deepEqual(adagrad.getState({ w: b }).extra, { 'w/step': 1 });
  assert.deepEqual(adagrad.getState({ w: a }).extra, { 'w/step': 3 });
});
