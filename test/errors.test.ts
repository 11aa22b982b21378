/**
 * Bad input never crashes the process: it gives a TypeError or RangeError whose message names the
 * offending argument (and, for shape errors, the expected shape). Covers the public API (layer
 * constructors, forward/forwardAsync, backward/backwardAsync, loadStateDict, setNumThreads,
 * Tensor.from) and the raw native surface (lib/native.ts) with untyped garbage, in sync and async
 * forms (async forms must return a rejected Promise, not throw), plus a fast-check property that
 * random garbage configs and buffers only ever succeed or throw TypeError/RangeError. Buffers whose
 * memory is taken away while an async call runs are tried in a child process, so a crash there is
 * reported as a failure instead of killing this test run.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';

import { GRU, LSTM, SimpleRNN, Tensor, getNumThreads, setNumThreads, type Recurrent } from '../lib/index.js';
import { native } from '../lib/native.js';
import { assertBitIdentical, rng, uniform32, uniform64 } from './helpers/compare.js';

// ---------------------------------------------------------------------------------------------
// Helpers

type ErrorClass = typeof TypeError | typeof RangeError;

function describeValue(e: unknown): string {
  return e instanceof Error ? `${e.constructor.name}: ${e.message}` : `non-Error ${typeof e}: ${String(e)}`;
}

/** Asserts e is a TypeError or RangeError (of `cls` when given) whose message contains every string in `includes`. */
function checkError(e: unknown, what: string, includes: readonly string[], cls?: ErrorClass): void {
  assert.ok(e instanceof TypeError || e instanceof RangeError, `${what}: expected a TypeError or RangeError, got ${describeValue(e)}`);
  if (cls) assert.ok(e instanceof cls, `${what}: expected a ${cls.name}, got ${describeValue(e)}`);
  for (const s of includes) {
    assert.ok(e.message.includes(s), `${what}: the message should mention "${s}": ${e.constructor.name}: ${e.message}`);
  }
}

function expectThrow(fn: () => unknown, what: string, includes: readonly string[] = [], cls?: ErrorClass): void {
  let thrown: unknown;
  let threw = false;
  try {
    fn();
  } catch (e) {
    threw = true;
    thrown = e;
  }
  assert.ok(threw, `${what}: expected an error, but the call succeeded`);
  checkError(thrown, what, includes, cls);
}

/** The call must not throw synchronously; it must return a Promise that rejects with the error. */
async function expectReject(fn: () => unknown, what: string, includes: readonly string[] = [], cls?: ErrorClass): Promise<void> {
  let p: unknown;
  try {
    p = fn();
  } catch (e) {
    assert.fail(`${what}: the async form threw synchronously (${describeValue(e)}) instead of returning a rejected Promise`);
  }
  assert.ok(p instanceof Promise, `${what}: expected a Promise, got ${typeof p}`);
  let rejected = false;
  let reason: unknown;
  await p.then(
    () => {},
    (e) => {
      rejected = true;
      reason = e;
    },
  );
  assert.ok(rejected, `${what}: expected the Promise to reject, but it resolved`);
  checkError(reason, what, includes, cls);
}

function detached(a: Float32Array | Float64Array): void {
  structuredClone(a.buffer, { transfer: [a.buffer] });
  assert.equal(a.length, 0, 'the buffer should be detached');
}

const B = 2, T = 5, I = 3, H = 4;

interface LayerKind {
  name: string;
  make: (extra?: object) => Recurrent;
  states: number;
}
const KINDS: LayerKind[] = [
  { name: 'SimpleRNN', make: (o = {}) => new SimpleRNN({ inputSize: I, units: H, seed: 1, ...o }), states: 1 },
  { name: 'LSTM', make: (o = {}) => new LSTM({ inputSize: I, units: H, seed: 2, ...o }), states: 2 },
  { name: 'GRU', make: (o = {}) => new GRU({ inputSize: I, units: H, seed: 3, ...o }), states: 1 },
];

const r = rng(77);
const goodX = (): Tensor => Tensor.from(uniform32(r, B * T * I), [B, T, I]);
const state = (b = B, h = H): Tensor => Tensor.from(uniform32(r, b * h), [b, h]);

/** A snapshot of a layer's parameters, to check failed calls change nothing. */
function snapshot(layer: Recurrent): Record<string, Float32Array | Float64Array> {
  return Object.fromEntries(Object.entries(layer.stateDict()).map(([k, t]) => [k, t.data.slice()]));
}
function assertUnchanged(layer: Recurrent, before: Record<string, Float32Array | Float64Array>, what: string): void {
  for (const [k, t] of Object.entries(layer.stateDict())) assertBitIdentical(t.data, before[k], `${what}: ${k} changed`);
}

// ---------------------------------------------------------------------------------------------
// Public API

describe('layer constructors reject bad options', () => {
  const bad: [string, object | null | undefined, string][] = [
    ['units 0', { inputSize: 3, units: 0 }, 'options.units'],
    ['units 2.5', { inputSize: 3, units: 2.5 }, 'options.units'],
    ['units -4', { inputSize: 3, units: -4 }, 'options.units'],
    ['units NaN', { inputSize: 3, units: NaN }, 'options.units'],
    ['units Infinity', { inputSize: 3, units: Infinity }, 'options.units'],
    ["units '4'", { inputSize: 3, units: '4' }, 'options.units'],
    ['units missing', { inputSize: 3 }, 'options.units'],
    ['inputSize 0', { inputSize: 0, units: 4 }, 'options.inputSize'],
    ['inputSize 1.5', { inputSize: 1.5, units: 4 }, 'options.inputSize'],
    ['inputSize -1', { inputSize: -1, units: 4 }, 'options.inputSize'],
    ["dtype 'float16'", { inputSize: 3, units: 4, dtype: 'float16' }, 'options.dtype'],
    ['options null', null, 'options'],
    ['options undefined', undefined, 'options'],
  ];
  for (const [label, opts, names] of bad) {
    for (const [cls, C] of [['SimpleRNN', SimpleRNN], ['LSTM', LSTM], ['GRU', GRU]] as const) {
      test(`${cls}: ${label}`, () => {
        expectThrow(() => new (C as new (o: unknown) => Recurrent)(opts), `new ${cls}(${label})`, [names]);
      });
    }
  }
  test("SimpleRNN: unknown activation 'swish'", () => {
    expectThrow(() => new SimpleRNN({ inputSize: 3, units: 4, activation: 'swish' as 'tanh' }), 'activation', ['options.activation', 'swish']);
  });
});

interface ForwardCase {
  label: string;
  x: () => unknown;
  options?: (k: LayerKind) => unknown;
  includes: (k: LayerKind) => string[];
  cls?: ErrorClass;
  only?: string[];
}

const FORWARD_CASES: ForwardCase[] = [
  { label: 'rank-2 input', x: () => Tensor.from(new Float32Array(B * I), [B, I]), includes: () => ['input', `[batch, steps, inputSize=${I}]`, `[${B}, ${I}]`], cls: RangeError },
  { label: 'rank-4 input', x: () => Tensor.from(new Float32Array(B * T * I), [B, T, I, 1]), includes: () => ['input', `[batch, steps, inputSize=${I}]`, `[${B}, ${T}, ${I}, 1]`], cls: RangeError },
  { label: 'wrong inputSize', x: () => Tensor.from(new Float32Array(B * T * (I + 1)), [B, T, I + 1]), includes: () => ['input', `inputSize=${I}`, `[${B}, ${T}, ${I + 1}]`], cls: RangeError },
  { label: 'zero-length sequence [2, 0, 3]', x: () => Tensor.from(new Float32Array(0), [B, 0, I]), includes: () => ['input', `inputSize=${I}`, `[${B}, 0, ${I}]`], cls: RangeError },
  { label: 'empty batch [0, 5, 3]', x: () => Tensor.from(new Float32Array(0), [0, T, I]), includes: () => ['input', `inputSize=${I}`, `[0, ${T}, ${I}]`], cls: RangeError },
  { label: 'plain nested array', x: () => [[[1, 2, 3]]], includes: () => ['input', 'Tensor', `[batch, steps, inputSize=${I}]`], cls: TypeError },
  { label: 'a Float32Array, not a Tensor', x: () => new Float32Array(B * T * I), includes: () => ['input', 'Tensor', `inputSize=${I}`], cls: TypeError },
  { label: 'null input', x: () => null, includes: () => ['input', 'Tensor', `inputSize=${I}`], cls: TypeError },
  { label: 'undefined input', x: () => undefined, includes: () => ['input', 'Tensor', `inputSize=${I}`], cls: TypeError },
  { label: 'Float64 data into a float32 layer', x: () => Tensor.from(new Float64Array(B * T * I), [B, T, I]), includes: () => ['input', 'float32', 'float64'], cls: TypeError },
  {
    label: 'detached input buffer',
    x: () => {
      const t = Tensor.from(new Float32Array(B * T * I), [B, T, I]);
      detached(t.data);
      return t;
    },
    includes: () => ['input', 'detached'],
    cls: TypeError,
  },
  { label: 'options not an object', x: goodX, options: () => 5, includes: () => ['options'], cls: TypeError },
  {
    label: 'wrong batch in initial state h0',
    x: goodX,
    options: (k) => ({ initialState: [state(B + 1), ...(k.states === 2 ? [state()] : [])] }),
    includes: () => ['initialState[0]', 'h0', `[batch=${B}, units=${H}]`, `[${B + 1}, ${H}]`],
    cls: RangeError,
  },
  {
    label: 'wrong units in initial state h0',
    x: goodX,
    options: (k) => ({ initialState: [state(B, H + 2), ...(k.states === 2 ? [state()] : [])] }),
    includes: () => ['initialState[0]', `[batch=${B}, units=${H}]`, `[${B}, ${H + 2}]`],
    cls: RangeError,
  },
  {
    label: 'wrong batch in initial state c0',
    only: ['LSTM'],
    x: goodX,
    options: () => ({ initialState: [state(), state(1)] }),
    includes: () => ['initialState[1]', 'c0', `[batch=${B}, units=${H}]`, `[1, ${H}]`],
    cls: RangeError,
  },
  {
    label: 'one initial state too many',
    x: goodX,
    options: (k) => ({ initialState: Array.from({ length: k.states + 1 }, () => state()) }),
    includes: (k) => ['initialState', k.states === 2 ? '[h0, c0]' : '[h0]', `[batch=${B}, units=${H}]`],
    cls: TypeError,
  },
  {
    label: 'one initial state too few',
    x: goodX,
    options: (k) => ({ initialState: Array.from({ length: k.states - 1 }, () => state()) }),
    includes: (k) => ['initialState', k.states === 2 ? '[h0, c0]' : '[h0]', `[batch=${B}, units=${H}]`],
    cls: TypeError,
  },
  { label: 'initialState a Tensor, not an array', x: goodX, options: () => ({ initialState: state() }), includes: () => ['initialState', `[batch=${B}, units=${H}]`], cls: TypeError },
  {
    label: 'initialState [null]',
    x: goodX,
    options: (k) => ({ initialState: [null, ...(k.states === 2 ? [state()] : [])] }),
    includes: () => ['initialState[0]', `[batch=${B}, units=${H}]`, 'null'],
    cls: TypeError,
  },
  {
    label: 'Float64 initial state into a float32 layer',
    x: goodX,
    options: (k) => ({ initialState: Array.from({ length: k.states }, () => Tensor.from(new Float64Array(B * H), [B, H])) }),
    includes: () => ['initialState[0]', 'float32', 'float64'],
    cls: TypeError,
  },
  {
    label: 'detached initial state',
    x: goodX,
    options: (k) => {
      const s = Array.from({ length: k.states }, () => state());
      detached(s[0].data);
      return { initialState: s };
    },
    includes: () => ['initialState[0]', 'detached'],
    cls: TypeError,
  },
];

describe('forward / forwardAsync reject bad input with a named TypeError/RangeError', () => {
  for (const k of KINDS) {
    for (const c of FORWARD_CASES) {
      if (c.only && !c.only.includes(k.name)) continue;
      test(`${k.name}: ${c.label}`, async () => {
        const layer = k.make({ returnSequences: true, returnState: true });
        const before = snapshot(layer);
        expectThrow(() => layer.forward(c.x() as Tensor, c.options?.(k) as never), `${k.name}.forward, ${c.label}`, [`${k.name}.forward`, ...c.includes(k)], c.cls);
        await expectReject(() => layer.forwardAsync(c.x() as Tensor, c.options?.(k) as never), `${k.name}.forwardAsync, ${c.label}`, [`${k.name}.forwardAsync`, ...c.includes(k)], c.cls);
        const opts = c.options ? c.options(k) : {};
        if (typeof opts === 'object' && opts !== null) {
          expectThrow(() => layer.forward(c.x() as Tensor, { ...opts, training: true } as never), `${k.name}.forward (training), ${c.label}`, c.includes(k), c.cls);
        }
        assertUnchanged(layer, before, c.label);
        // The layer still works afterwards.
        const ok = layer.forward(goodX());
        assert.deepEqual(ok.output.shape, [B, T, H]);
      });
    }
  }

  test('float32 data into a float64 layer', async () => {
    const layer = new GRU({ inputSize: I, units: H, dtype: 'float64' });
    expectThrow(() => layer.forward(goodX()), 'float32 into float64', ['GRU.forward', 'input', 'float64', 'float32'], TypeError);
    await expectReject(() => layer.forwardAsync(goodX()), 'float32 into float64 (async)', ['GRU.forwardAsync', 'input', 'float64'], TypeError);
  });
});

test('a SharedArrayBuffer-backed initial state is accepted or rejected with a named TypeError', async () => {
  // A Float32Array over a SharedArrayBuffer passes every check of Tensor.from and of the layer
  // (it is a Float32Array of the right length), so it reaches the native code as is.
  const layer = new LSTM({ inputSize: I, units: H, seed: 4 });
  const x = goodX();
  const h0 = state(), c0 = state();
  const shared = new Float32Array(new SharedArrayBuffer(h0.data.byteLength));
  shared.set(h0.data);
  const want = layer.forward(x, { initialState: [h0, c0] }).output.data;
  for (const form of ['forward', 'forwardAsync'] as const) {
    let result: { output: Tensor } | undefined;
    try {
      result = await layer[form](x, { initialState: [Tensor.from(shared, [B, H]), c0] });
    } catch (e) {
      checkError(e, `LSTM.${form} with a SharedArrayBuffer-backed h0`, ['initialState[0]'], TypeError);
      continue;
    }
    assertBitIdentical(result.output.data, want, `LSTM.${form} with a SharedArrayBuffer-backed h0: output`);
  }
});

describe('loadStateDict rejects bad parameters and leaves the weights unchanged', () => {
  const G = { SimpleRNN: 1, LSTM: 4, GRU: 3 } as Record<string, number>;
  const cases: { label: string; edit: (d: Record<string, Tensor>, g: number) => unknown; includes: (g: number) => string[]; cls: ErrorClass }[] = [
    {
      label: 'NaN in weight_ih_l0',
      edit: (d) => {
        d.weight_ih_l0.data[3] = NaN;
      },
      includes: () => ['weight_ih_l0', 'NaN', 'flat index 3'],
      cls: RangeError,
    },
    {
      label: 'Infinity in bias_hh_l0',
      edit: (d) => {
        d.bias_hh_l0.data[0] = Infinity;
      },
      includes: () => ['bias_hh_l0', 'Infinity', 'flat index 0'],
      cls: RangeError,
    },
    {
      label: '-Infinity in weight_hh_l0',
      edit: (d) => {
        d.weight_hh_l0.data[d.weight_hh_l0.data.length - 1] = -Infinity;
      },
      includes: () => ['weight_hh_l0', '-Infinity'],
      cls: RangeError,
    },
    {
      label: 'unknown parameter name',
      edit: (d) => {
        d.weight_ih_l1 = d.weight_ih_l0;
      },
      includes: () => ['weight_ih_l1', 'weight_ih_l0', 'weight_hh_l0'],
      cls: RangeError,
    },
    {
      label: 'missing parameter',
      edit: (d) => {
        delete d.bias_hh_l0;
      },
      includes: (g) => ['bias_hh_l0', `[${g * H}]`],
      cls: RangeError,
    },
    {
      label: 'transposed weight_ih_l0',
      edit: (d, g) => {
        d.weight_ih_l0 = Tensor.from(new Float32Array(g * H * I), [I, g * H]);
      },
      includes: (g) => ['weight_ih_l0', `[${g * H}, ${I}]`, `[${I}, ${g * H}]`],
      cls: RangeError,
    },
    {
      label: 'flat weight_hh_l0',
      edit: (d, g) => {
        d.weight_hh_l0 = Tensor.from(new Float32Array(g * H * H), [g * H * H]);
      },
      includes: (g) => ['weight_hh_l0', `[${g * H}, ${H}]`],
      cls: RangeError,
    },
    {
      label: 'plain array instead of a Tensor',
      edit: (d) => {
        (d as Record<string, unknown>).bias_ih_l0 = [0, 0, 0];
      },
      includes: () => ['bias_ih_l0', 'Tensor'],
      cls: TypeError,
    },
    {
      label: 'detached weight',
      edit: (d) => {
        detached(d.weight_ih_l0.data);
      },
      includes: () => ['weight_ih_l0', 'detached'],
      cls: TypeError,
    },
  ];
  for (const k of KINDS) {
    for (const c of cases) {
      test(`${k.name}: ${c.label}`, () => {
        const layer = k.make();
        const before = snapshot(layer);
        const dict = Object.fromEntries(Object.entries(layer.stateDict()).map(([n, t]) => [n, t.clone()]));
        // Make the candidate differ from the current weights, so a partial load would be visible.
        for (const t of Object.values(dict)) t.data.fill(0.25);
        c.edit(dict, G[k.name]);
        expectThrow(() => layer.loadStateDict(dict), `${k.name}.loadStateDict, ${c.label}`, ['loadStateDict', ...c.includes(G[k.name])], c.cls);
        assertUnchanged(layer, before, c.label);
      });
    }
    test(`${k.name}: not an object`, () => {
      const layer = k.make();
      for (const v of [null, undefined, 5, 'weights']) {
        expectThrow(() => layer.loadStateDict(v as never), `loadStateDict(${String(v)})`, ['loadStateDict'], TypeError);
      }
    });
    test(`${k.name}: biases given to a layer without biases`, () => {
      const withBias = k.make();
      const layer = k.make({ useBias: false });
      expectThrow(() => layer.loadStateDict(withBias.stateDict()), 'useBias false', ['loadStateDict', 'bias_ih_l0'], RangeError);
    });
  }
});

describe('backward / backwardAsync reject bad arguments', () => {
  for (const k of KINDS) {
    for (const returnSequences of [true, false]) {
      test(`${k.name} returnSequences=${returnSequences}`, async () => {
        const layer = k.make({ returnSequences, returnState: true });
        const x = goodX();
        const run = layer.forward(x, { training: true }).run!;
        const outShape = returnSequences ? `[batch=${B}, steps=${T}, units=${H}]` : `[batch=${B}, units=${H}]`;
        const dOut = () => (returnSequences ? Tensor.from(uniform32(r, B * T * H), [B, T, H]) : state());
        const badOut = returnSequences ? state() : Tensor.from(new Float32Array(B * T * H), [B, T, H]);
        const other = k.make({ returnSequences, returnState: true });
        const otherRun = other.forward(x, { training: true }).run!;
        const name = k.name;
        const bad: [string, () => [unknown, unknown, unknown?], string[], ErrorClass][] = [
          ['dOutput of the wrong shape', () => [run, badOut], ['dOutput', outShape], RangeError],
          ['dOutput of the wrong dtype', () => [run, Tensor.from(new Float64Array(dOut().size), dOut().shape)], ['dOutput', 'float32'], TypeError],
          ['dOutput a plain array', () => [run, [1, 2, 3]], ['dOutput', outShape], TypeError],
          ['dStates[0] of the wrong shape', () => [run, dOut(), { dStates: [state(B + 1)] }], ['dStates[0]', `[batch=${B}, units=${H}]`], RangeError],
          ['too many dStates', () => [run, dOut(), { dStates: [state(), state(), state()] }], ['dStates', `${k.states}`], TypeError],
          ['dStates not an array', () => [run, dOut(), { dStates: state() }], ['dStates'], TypeError],
          ['a run from another layer', () => [otherRun, dOut()], ['run', 'this layer'], TypeError],
          ['run undefined (forward without training)', () => [layer.forward(x).run, dOut()], ['run', 'training: true'], TypeError],
          ['run null', () => [null, dOut()], ['run'], TypeError],
          ['run a plain object', () => [{}, dOut()], ['run'], TypeError],
        ];
        for (const [label, args, includes, cls] of bad) {
          expectThrow(() => layer.backward(...(args() as [never, never, never])), `${name}.backward, ${label}`, [`${name}.backward`, ...includes], cls);
          await expectReject(() => layer.backwardAsync(...(args() as [never, never, never])), `${name}.backwardAsync, ${label}`, [`${name}.backwardAsync`, ...includes], cls);
        }
        // A forged run object with inconsistent internals reaches the native checks: still no crash.
        const forged = { ...run, xTime: new Float32Array(3), workspace: new Float32Array(2) };
        expectThrow(() => layer.backward(forged as never, dOut()), `${name}.backward, forged run`);
        await expectReject(() => layer.backwardAsync(forged as never, dOut()), `${name}.backwardAsync, forged run`);
        const forgedSize = { ...run, batch: 1.5 };
        expectThrow(() => layer.backward(forgedSize as never, null), `${name}.backward, forged run with batch 1.5`);
        // The genuine run still works.
        const g = layer.backward(run, dOut());
        assert.deepEqual(g.input.shape, [B, T, I]);
      });
    }
  }
});

test('setNumThreads rejects bad counts and keeps the current one', () => {
  const before = getNumThreads();
  for (const n of [0, -1, 1.5, NaN, Infinity, 1025, '2', undefined, null]) {
    expectThrow(() => setNumThreads(n as number), `setNumThreads(${String(n)})`, ['setNumThreads', 'n'], RangeError);
    assert.equal(getNumThreads(), before, `setNumThreads(${String(n)}) changed the thread count`);
  }
});

test('Tensor.from rejects inconsistent data and shapes', () => {
  expectThrow(() => Tensor.from(new Float32Array(5), [2, 3]), 'wrong size', ['Tensor.from', '[2, 3]', '6', '5'], RangeError);
  expectThrow(() => Tensor.from(new Float32Array(6), [2, -3]), 'negative dim', ['Tensor.from', 'shape'], TypeError);
  expectThrow(() => Tensor.from(new Float32Array(6), [2, 1.5]), 'fractional dim', ['Tensor.from', 'shape'], TypeError);
  expectThrow(() => Tensor.from(new Int32Array(6) as never, [2, 3]), 'Int32Array', ['Tensor.from', 'Float32Array'], TypeError);
  expectThrow(() => Tensor.from(new Float32Array(6), [2, 3], 'float64'), 'dtype mismatch', ['Tensor.from', 'float64'], TypeError);
  const d = new Float32Array(6);
  detached(d);
  expectThrow(() => Tensor.from(d, [2, 3]), 'detached', ['Tensor.from', 'detached', '[2, 3]'], RangeError);
});

// ---------------------------------------------------------------------------------------------
// Raw native surface

type Dict = Record<string, unknown>;
const NT = 2, NB = 1, NI = 2, NH = 3;
const nativeCfg = (over: Dict = {}): Dict => ({ cell: 'lstm', steps: NT, batch: NB, inputSize: NI, hiddenSize: NH, ...over });
const f32 = (n: number) => new Float32Array(n).fill(0.5);
const fwdBufs = (over: Dict = {}): Dict => ({ x: f32(NT * NB * NI), weightIh: f32(4 * NH * NI), weightHh: f32(4 * NH * NH), ...over });
const wsLen = (): number => native.workspaceSize(nativeCfg() as never);
const bwdBufs = (over: Dict = {}): Dict => ({
  x: f32(NT * NB * NI),
  weightIh: f32(4 * NH * NI),
  weightHh: f32(4 * NH * NH),
  workspace: f32(wsLen()),
  dWeightIh: f32(4 * NH * NI),
  dWeightHh: f32(4 * NH * NH),
  ...over,
});
const det = (n: number): Float32Array => {
  const a = f32(n);
  detached(a);
  return a;
};

/** Runs the sync form (must throw) and the async form (must reject) of native forward or backward. */
async function nativeBoth(kind: 'forward' | 'backward', args: unknown[], what: string, includes: string[], cls?: ErrorClass): Promise<void> {
  const sync = native[kind] as (...a: unknown[]) => unknown;
  const asyncFn = native[`${kind}Async`] as (...a: unknown[]) => unknown;
  expectThrow(() => sync(...args), `native.${kind}: ${what}`, includes, cls);
  await expectReject(() => asyncFn(...args), `native.${kind}Async: ${what}`, includes, cls);
}

describe('native surface: untyped garbage gives TypeError/RangeError (sync) or a rejection (async)', () => {
  test('the valid baseline calls succeed', async () => {
    assert.equal(native.forward(nativeCfg() as never, fwdBufs() as never), undefined);
    assert.equal(await native.forwardAsync(nativeCfg() as never, fwdBufs() as never), undefined);
    assert.equal(native.backward(nativeCfg() as never, bwdBufs() as never), undefined);
    assert.equal(await native.backwardAsync(nativeCfg() as never, bwdBufs() as never), undefined);
    assert.ok(Number.isSafeInteger(wsLen()) && wsLen() > 0);
  });

  test('missing arguments and non-object config / buffers', async () => {
    await nativeBoth('forward', [], 'no arguments', ['config']);
    await nativeBoth('forward', [nativeCfg()], 'no buffers', ['buffers']);
    for (const c of [undefined, null, 5, 'lstm', true, Symbol('x')]) {
      await nativeBoth('forward', [c, fwdBufs()], `config ${String(c)}`, ['config'], TypeError);
      await nativeBoth('backward', [c, bwdBufs()], `config ${String(c)}`, ['config'], TypeError);
    }
    for (const b of [undefined, null, 5, 'x', true]) {
      await nativeBoth('forward', [nativeCfg(), b], `buffers ${String(b)}`, ['buffers'], TypeError);
      await nativeBoth('backward', [nativeCfg(), b], `buffers ${String(b)}`, ['buffers'], TypeError);
    }
    await nativeBoth('forward', [[], fwdBufs()], 'config []', ['config.cell'], TypeError);
    await nativeBoth('forward', [{}, fwdBufs()], 'config {}', ['config.cell'], TypeError);
  });

  test('unknown or malformed cell name', async () => {
    for (const cell of ['gru2', 'LSTM', '', 5, null, undefined, {}, ['lstm']]) {
      await nativeBoth('forward', [nativeCfg({ cell }), fwdBufs()], `cell ${JSON.stringify(cell)}`, ['config.cell'], TypeError);
    }
  });

  test('non-boolean flags', async () => {
    for (const flag of ['reverse', 'linearBeforeReset']) {
      for (const v of [1, 'yes', {}, 0]) {
        await nativeBoth('forward', [nativeCfg({ [flag]: v }), fwdBufs()], `${flag} ${JSON.stringify(v)}`, [`config.${flag}`], TypeError);
      }
    }
  });

  test('negative, zero, fractional, non-finite and non-number sizes', async () => {
    for (const dim of ['steps', 'batch', 'inputSize', 'hiddenSize']) {
      for (const v of [0, -1, -0.5, 1.5, NaN, Infinity, -Infinity, 2 ** 31, 2 ** 53, 1e300]) {
        await nativeBoth('forward', [nativeCfg({ [dim]: v }), fwdBufs()], `${dim} ${v}`, [`config.${dim}`], RangeError);
        await nativeBoth('backward', [nativeCfg({ [dim]: v }), bwdBufs()], `${dim} ${v}`, [`config.${dim}`], RangeError);
      }
      for (const v of ['2', null, undefined, 2n, {}, [2]]) {
        await nativeBoth('forward', [nativeCfg({ [dim]: v }), fwdBufs()], `${dim} ${String(v)}`, [`config.${dim}`], TypeError);
      }
    }
  });

  test('enormous sizes (steps·batch·hiddenSize >= 2^31 and friends)', async () => {
    const huge: Dict[] = [
      { steps: 2 ** 16, batch: 2 ** 16, hiddenSize: 1, inputSize: 1 }, // T·B = 2^32
      { steps: 2 ** 16, batch: 2 ** 15, hiddenSize: 1, inputSize: 1 }, // T·B·4H = 2^33 for LSTM
      { steps: 2 ** 20, batch: 1, hiddenSize: 1, inputSize: 2 ** 11 }, // T·B·I = 2^31
      { steps: 1, batch: 1, hiddenSize: 2 ** 15, inputSize: 1 }, // 4H·H = 2^32
      { steps: 2 ** 31 - 1, batch: 2 ** 31 - 1, hiddenSize: 2 ** 31 - 1, inputSize: 2 ** 31 - 1 },
    ];
    for (const h of huge) {
      for (const cell of ['lstm', 'gru', 'rnn_tanh']) {
        const G = cell === 'lstm' ? 4 : cell === 'gru' ? 3 : 1;
        const [Tn, Bn, In, Hn] = [h.steps, h.batch, h.inputSize, h.hiddenSize] as number[];
        // Within the documented limits (e.g. rnn_tanh with H = 2^15) the config is valid and only the buffers are wrong.
        if (Tn * Bn * Math.max(In, G * Hn) < 2 ** 31 && G * Hn * Math.max(In, Hn) < 2 ** 31) continue;
        const cfg = nativeCfg({ ...h, cell });
        await nativeBoth('forward', [cfg, fwdBufs()], `${cell} ${JSON.stringify(h)}`, [], RangeError);
        await nativeBoth('backward', [cfg, bwdBufs()], `${cell} ${JSON.stringify(h)}`, [], RangeError);
        expectThrow(() => native.workspaceSize(cfg as never), `workspaceSize ${cell} ${JSON.stringify(h)}`, ['config'], RangeError);
      }
    }
  });

  test('missing required buffers', async () => {
    for (const name of ['x', 'weightIh', 'weightHh']) {
      const b = fwdBufs();
      delete b[name];
      await nativeBoth('forward', [nativeCfg(), b], `forward without ${name}`, [name, 'required'], TypeError);
    }
    for (const name of ['x', 'weightIh', 'weightHh', 'workspace', 'dWeightIh', 'dWeightHh']) {
      const b = bwdBufs();
      delete b[name];
      await nativeBoth('backward', [nativeCfg(), b], `backward without ${name}`, [name, 'required'], TypeError);
    }
  });

  test('buffers of the wrong type', async () => {
    const n = NT * NB * NI;
    const wrong: [string, unknown][] = [
      ['Int32Array', new Int32Array(n)],
      ['Uint8Array', new Uint8Array(n)],
      ['Float32Array-sized Uint32Array', new Uint32Array(n)],
      ['BigInt64Array', new BigInt64Array(n)],
      ['DataView', new DataView(new ArrayBuffer(4 * n))],
      ['ArrayBuffer', new ArrayBuffer(4 * n)],
      ['plain array', Array.from({ length: n }, () => 0.5)],
      ['number', 5],
      ['string', 'x'],
      ['object', { length: n }],
    ];
    for (const [label, v] of wrong) {
      await nativeBoth('forward', [nativeCfg(), fwdBufs({ x: v })], `x as ${label}`, ['x', 'Float32Array'], TypeError);
      await nativeBoth('forward', [nativeCfg(), fwdBufs({ y: v })], `y as ${label}`, ['y'], TypeError);
      await nativeBoth('backward', [nativeCfg(), bwdBufs({ dWeightHh: v })], `dWeightHh as ${label}`, ['dWeightHh'], TypeError);
    }
    // Mixed dtypes within one call.
    await nativeBoth('forward', [nativeCfg(), fwdBufs({ weightHh: new Float64Array(4 * NH * NH) })], 'mixed dtypes', ['weightHh', 'Float32Array', 'Float64Array'], TypeError);
    await nativeBoth('backward', [nativeCfg(), bwdBufs({ dx: new Float64Array(NT * NB * NI) })], 'mixed dtypes (backward)', ['dx'], TypeError);
  });

  test('buffers of the wrong length', async () => {
    const fwdLens: Dict = { x: NT * NB * NI, weightIh: 4 * NH * NI, weightHh: 4 * NH * NH, biasIh: 4 * NH, biasHh: 4 * NH, h0: NB * NH, c0: NB * NH, y: NT * NB * NH, hN: NB * NH, cN: NB * NH, workspace: wsLen() };
    for (const [name, len] of Object.entries(fwdLens) as [string, number][]) {
      for (const l of [len - 1, len + 1, 0]) {
        await nativeBoth('forward', [nativeCfg(), fwdBufs({ [name]: f32(l) })], `${name} of length ${l}`, [name, `expected ${len} elements`], RangeError);
      }
      // A subarray view of the right length over a longer buffer is fine.
      const view = f32(len + 8).subarray(4, 4 + len);
      assert.equal(native.forward(nativeCfg() as never, fwdBufs({ [name]: view }) as never), undefined, `${name} as a subarray view`);
    }
    const bwdLens: Dict = { workspace: wsLen(), dy: NT * NB * NH, dhN: NB * NH, dcN: NB * NH, dx: NT * NB * NI, dh0: NB * NH, dc0: NB * NH, dWeightIh: 4 * NH * NI, dBiasHh: 4 * NH };
    for (const [name, len] of Object.entries(bwdLens) as [string, number][]) {
      await nativeBoth('backward', [nativeCfg(), bwdBufs({ [name]: f32(len + 1) })], `${name} of length ${len + 1}`, [name, `expected ${len} elements`], RangeError);
    }
  });

  test('detached buffers', async () => {
    await nativeBoth('forward', [nativeCfg(), fwdBufs({ x: det(NT * NB * NI) })], 'detached x', ['x', 'detached'], TypeError);
    await nativeBoth('forward', [nativeCfg(), fwdBufs({ y: det(NT * NB * NH) })], 'detached y', ['y', 'detached'], TypeError);
    await nativeBoth('backward', [nativeCfg(), bwdBufs({ workspace: det(wsLen()) })], 'detached workspace', ['workspace', 'detached'], TypeError);
  });

  test('a SharedArrayBuffer-backed buffer is accepted or rejected with a TypeError naming it', async () => {
    const sab = (n: number) => new Float32Array(new SharedArrayBuffer(4 * n)).fill(0.5);
    const y = f32(NT * NB * NH);
    native.forward(nativeCfg() as never, fwdBufs({ y }) as never);
    for (const [name, len] of [['x', NT * NB * NI], ['weightHh', 4 * NH * NH], ['y', NT * NB * NH]] as const) {
      for (const form of ['forward', 'forwardAsync'] as const) {
        const bufs = fwdBufs({ [name]: sab(len), ...(name === 'y' ? {} : { y: f32(NT * NB * NH) }) });
        try {
          await native[form](nativeCfg() as never, bufs as never);
        } catch (e) {
          checkError(e, `native.${form} with a SharedArrayBuffer-backed ${name}`, [name], TypeError);
          continue;
        }
        assertBitIdentical(bufs.y as Float32Array, y, `native.${form} with a SharedArrayBuffer-backed ${name}: y`);
      }
    }
  });

  test('workspaceSize, setNumThreads and getNumThreads with garbage', () => {
    for (const c of [undefined, null, 5, 'x', {}, nativeCfg({ steps: -1 }), nativeCfg({ cell: 'x' })]) {
      expectThrow(() => (native.workspaceSize as (c: unknown) => number)(c), `workspaceSize(${JSON.stringify(c)})`, ['config']);
    }
    expectThrow(() => (native.workspaceSize as () => number)(), 'workspaceSize()', ['config'], TypeError);
    const before = native.getNumThreads();
    for (const n of [0, -3, 2.5, NaN, Infinity, 1025]) expectThrow(() => native.setNumThreads(n), `native.setNumThreads(${n})`, ['n'], RangeError);
    for (const n of [undefined, '2', null, {}, 2n]) expectThrow(() => (native.setNumThreads as (n: unknown) => void)(n), `native.setNumThreads(${String(n)})`, ['n'], TypeError);
    expectThrow(() => (native.setNumThreads as unknown as () => void)(), 'native.setNumThreads()', ['n'], TypeError);
    assert.equal(native.getNumThreads(), before);
    assert.equal((native.getNumThreads as (...a: unknown[]) => number)('garbage', 5), before);
  });
});

// ---------------------------------------------------------------------------------------------
// Property: random garbage never crashes

const BUFFER_NAMES = ['x', 'weightIh', 'weightHh', 'biasIh', 'biasHh', 'h0', 'c0', 'y', 'hN', 'cN', 'workspace', 'dy', 'dhN', 'dcN', 'dx', 'dh0', 'dc0', 'dWeightIh', 'dWeightHh', 'dBiasIh', 'dBiasHh'];
const CELLS = ['rnn_tanh', 'rnn_relu', 'lstm', 'gru'];

/** The length buffer `name` must have for cfg, when cfg's sizes are small valid integers. */
function expectedLength(cfg: unknown, name: string): number | undefined {
  if (typeof cfg !== 'object' || cfg === null) return undefined;
  const c = cfg as Dict;
  const dims = [c.steps, c.batch, c.inputSize, c.hiddenSize];
  if (!dims.every((d) => typeof d === 'number' && Number.isInteger(d) && d >= 1 && d <= 8)) return undefined;
  const [Tn, Bn, In, Hn] = dims as number[];
  const G = c.cell === 'lstm' ? 4 : c.cell === 'gru' ? 3 : 1;
  const lens: Record<string, number> = {
    x: Tn * Bn * In, dx: Tn * Bn * In,
    weightIh: G * Hn * In, dWeightIh: G * Hn * In,
    weightHh: G * Hn * Hn, dWeightHh: G * Hn * Hn,
    biasIh: G * Hn, biasHh: G * Hn, dBiasIh: G * Hn, dBiasHh: G * Hn,
    y: Tn * Bn * Hn, dy: Tn * Bn * Hn,
  };
  if (name === 'workspace') {
    try {
      return native.workspaceSize(c as never);
    } catch {
      return undefined;
    }
  }
  return lens[name] ?? Bn * Hn; // the [batch, hiddenSize] states
}

type BufferKind = 'absent' | 'right32' | 'right64' | 'short' | 'long' | 'empty' | 'int32' | 'detached' | 'view' | 'garbage';

function materialize(kind: BufferKind, len: number | undefined, garbage: unknown, values: number): unknown {
  const n = Math.min(len ?? 1 + (values % 7), 4096);
  const fill = (a: Float32Array | Float64Array) => a.map((_, k) => Math.sin(values + k));
  switch (kind) {
    case 'absent':
      return undefined;
    case 'right32':
      return fill(new Float32Array(n));
    case 'right64':
      return fill(new Float64Array(n));
    case 'short':
      return new Float32Array(Math.max(0, n - 1));
    case 'long':
      return new Float32Array(n + 1);
    case 'empty':
      return new Float32Array(0);
    case 'int32':
      return new Int32Array(n);
    case 'detached': {
      const a = new Float32Array(n);
      structuredClone(a.buffer, { transfer: [a.buffer] });
      return a;
    }
    case 'view':
      return new Float32Array(n + 5).subarray(2, 2 + n);
    case 'garbage':
      return garbage;
  }
}

const dimArb = fc.oneof(
  { weight: 24, arbitrary: fc.integer({ min: 1, max: 4 }) },
  { weight: 1, arbitrary: fc.integer({ min: -3, max: 0 }) },
  { weight: 1, arbitrary: fc.double() },
  { weight: 1, arbitrary: fc.constantFrom(2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 53, 1e308, -0, 65536) },
  { weight: 1, arbitrary: fc.anything() },
);
const configArb = fc.oneof(
  { weight: 1, arbitrary: fc.anything() },
  {
    weight: 6,
    arbitrary: fc.record(
      {
        cell: fc.oneof({ weight: 12, arbitrary: fc.constantFrom(...CELLS) }, { weight: 1, arbitrary: fc.anything() }),
        linearBeforeReset: fc.oneof({ weight: 8, arbitrary: fc.boolean() }, { weight: 1, arbitrary: fc.anything() }),
        reverse: fc.oneof({ weight: 8, arbitrary: fc.boolean() }, { weight: 1, arbitrary: fc.anything() }),
        steps: dimArb,
        batch: dimArb,
        inputSize: dimArb,
        hiddenSize: dimArb,
      },
      { requiredKeys: ['cell', 'steps', 'batch', 'inputSize', 'hiddenSize'] },
    ),
  },
);
const kindArb: fc.Arbitrary<BufferKind> = fc.oneof(
  { weight: 16, arbitrary: fc.constant<BufferKind>('right32') },
  { weight: 4, arbitrary: fc.constant<BufferKind>('absent') },
  { weight: 2, arbitrary: fc.constant<BufferKind>('right64') },
  { weight: 1, arbitrary: fc.constantFrom<BufferKind>('short', 'long', 'empty', 'int32', 'detached', 'view', 'garbage') },
);
const buffersSpecArb = fc.oneof(
  { weight: 1, arbitrary: fc.anything().map((g) => ({ raw: g as unknown, kinds: undefined, garbage: undefined, values: 0 })) },
  {
    weight: 8,
    arbitrary: fc.record({
      raw: fc.constant(undefined as unknown),
      kinds: fc.dictionary(fc.constantFrom(...BUFFER_NAMES), kindArb, { minKeys: 0, maxKeys: 6 }) as fc.Arbitrary<Record<string, BufferKind> | undefined>,
      garbage: fc.anything(),
      values: fc.nat(1000),
    }),
  },
);

/** Builds the buffers object; names not in `kinds` get a correct Float32Array (so some calls succeed). */
function buildBuffers(cfg: unknown, spec: { raw: unknown; kinds?: Record<string, BufferKind>; garbage: unknown; values: number }, backward: boolean): unknown {
  if (!spec.kinds) return spec.raw;
  const out: Dict = {};
  const defaults = backward ? ['x', 'weightIh', 'weightHh', 'workspace', 'dWeightIh', 'dWeightHh'] : ['x', 'weightIh', 'weightHh'];
  for (const name of new Set([...defaults, ...Object.keys(spec.kinds)])) {
    const kind = spec.kinds[name] ?? 'right32';
    out[name] = materialize(kind, expectedLength(cfg, name), spec.garbage, spec.values);
  }
  return out;
}

describe('property: random garbage configs and buffers never crash', () => {
  let successes = 0;
  const isAllowed = (e: unknown): boolean => e instanceof TypeError || e instanceof RangeError;

  for (const kind of ['forward', 'backward'] as const) {
    test(`native.${kind}`, () => {
      fc.assert(
        fc.property(configArb, buffersSpecArb, (cfg, spec) => {
          const bufs = buildBuffers(cfg, spec, kind === 'backward');
          try {
            (native[kind] as (c: unknown, b: unknown) => unknown)(cfg, bufs);
            successes++;
          } catch (e) {
            if (!isAllowed(e)) throw new Error(`native.${kind} threw ${describeValue(e)}`);
          }
        }),
        { numRuns: 600, seed: kind === 'forward' ? 11 : 12 },
      );
    });
    test(`native.${kind}Async`, async () => {
      await fc.assert(
        fc.asyncProperty(configArb, buffersSpecArb, async (cfg, spec) => {
          const bufs = buildBuffers(cfg, spec, kind === 'backward');
          let p: unknown;
          try {
            p = (native[`${kind}Async`] as (c: unknown, b: unknown) => unknown)(cfg, bufs);
          } catch (e) {
            throw new Error(`native.${kind}Async threw synchronously: ${describeValue(e)}`);
          }
          if (!(p instanceof Promise)) throw new Error(`native.${kind}Async returned ${typeof p}, not a Promise`);
          try {
            await p;
            successes++;
          } catch (e) {
            if (!isAllowed(e)) throw new Error(`native.${kind}Async rejected with ${describeValue(e)}`);
          }
        }),
        { numRuns: 400, seed: kind === 'forward' ? 21 : 22 },
      );
    });
  }

  test('the generators also produce valid calls (the property is not only about rejections)', () => {
    let ok = 0;
    for (const [cfg, spec] of fc.sample(fc.tuple(configArb, buffersSpecArb), { numRuns: 400, seed: 5 })) {
      try {
        native.forward(cfg as never, buildBuffers(cfg, spec, false) as never);
        ok++;
      } catch (e) {
        if (!isAllowed(e)) throw new Error(`native.forward threw ${describeValue(e)}`);
      }
    }
    assert.ok(ok >= 60, `only ${ok} of 400 generated forward calls succeeded`);
    console.log(`# ${ok} of 400 generated forward calls succeeded; ${successes} successes in the property runs above`);
  });

  test('layers: random garbage as input, options and initial states', async () => {
    const layers = KINDS.map((k) => k.make({ returnState: true }));
    const tensorish = fc.oneof(
      fc.anything(),
      fc.tuple(fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 4 }), fc.boolean()).map(([shape, f64]) => {
        const n = shape.reduce((a, b) => a * b, 1);
        return Tensor.from(f64 ? uniform64(r, n) : uniform32(r, n), shape);
      }),
    );
    await fc.assert(
      fc.asyncProperty(fc.nat(KINDS.length - 1), tensorish, fc.oneof(fc.anything(), fc.record({ initialState: fc.array(tensorish, { maxLength: 3 }), training: fc.anything() })), async (li, x, opts) => {
        const layer = layers[li];
        for (const call of [() => layer.forward(x as Tensor, opts as never), () => layer.forwardAsync(x as Tensor, opts as never)]) {
          try {
            await call();
          } catch (e) {
            if (!isAllowed(e)) throw new Error(`${layer.className} threw ${describeValue(e)}`);
          }
        }
      }),
      { numRuns: 300, seed: 31 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Buffers whose memory disappears while an async call runs (child processes)

describe('taking a buffer away during an async call does not crash the process', () => {
  const script = fileURLToPath(new URL('./helpers/mutate-during-async.ts', import.meta.url));
  const modes: [string, string][] = [
    ['native-transfer', "native.forwardAsync; y's ArrayBuffer transferred away (structuredClone) and garbage-collected while it runs"],
    ['native-resize', 'native.forwardAsync; y backed by a resizable ArrayBuffer that is shrunk to 0 while it runs'],
    ['layer-weights', "LSTM.forwardAsync; the live weight_hh_l0 from stateDict() transferred away and garbage-collected while it runs"],
  ];
  for (const [mode, label] of modes) {
    test(label, () => {
      const res = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', script, mode], { encoding: 'utf8', timeout: 60_000 });
      const detail = `exit code ${res.status}, signal ${res.signal}; stdout: ${res.stdout.trim() || '(empty)'}; stderr: ${res.stderr.trim().slice(-800) || '(empty)'}`;
      assert.equal(res.signal, null, `the child process was killed by ${res.signal} (a crash): ${detail}`);
      assert.equal(res.status, 0, `the child process failed: ${detail}`);
      assert.match(res.stdout, /settled: (resolved|rejected (TypeError|RangeError))/, `the call neither resolved nor rejected with a TypeError/RangeError: ${detail}`);
    });
  }
});

test('activation parameters are checked: only activations that take alpha/beta accept them', () => {
  const bad: [() => unknown, RegExp][] = [
    [() => new SimpleRNN({ inputSize: 2, units: 3, activation: { name: 'tanh', alpha: 2 } }), /options\.activation\.alpha/],
    [() => new SimpleRNN({ inputSize: 2, units: 3, activation: { name: 'leakyRelu', beta: 1 } }), /options\.activation\.beta/],
    [() => new LSTM({ inputSize: 2, units: 3, recurrentActivation: { name: 'hardSigmoid', alpha: Number.NaN } }), /options\.recurrentActivation\.alpha/],
    [() => new GRU({ inputSize: 2, units: 3, activation: 'swish' as 'tanh' }), /options\.activation/],
    [() => new LSTM({ inputSize: 2, units: 3, variant: 'XYZ' as 'V' }), /options\.variant/],
    [() => new LSTM({ inputSize: 2, units: 3, coupledInputForget: true, inputGate: false }), /coupledInputForget/],
    [() => new LSTM({ inputSize: 2, units: 3, clip: -1 }), /options\.clip/],
    [() => new LSTM({ inputSize: 2, units: 3, projClip: 1 }), /options\.projClip/],
  ];
  for (const [make, pattern] of bad) {
    assert.throws(make, (e: unknown) => (e instanceof TypeError || e instanceof RangeError) && pattern.test(String(e)), String(pattern));
  }
  // and the ones that take them accept them
  new SimpleRNN({ inputSize: 2, units: 3, activation: { name: 'scaledTanh', alpha: 1.5, beta: 0.5 } });
  new LSTM({ inputSize: 2, units: 3, recurrentActivation: { name: 'hardSigmoid', alpha: 0.25, beta: 0.5 } });
});
