/**
 * Validation in the TypeScript layer: values the native core would refuse (or that silently change
 * meaning) are rejected where they enter, with a TypeError/RangeError naming the option or argument.
 * Non-finite values after narrowing to float32, clip and activation bounds, strict booleans, unknown
 * options, seeds, Tensor.zeros shapes, non-number array elements, the declared type of Tensor.from,
 * and the build command named when the addon cannot be loaded. Then one test per fuzzer finding
 * (test/helpers/fuzz-body.ts): detached and shrunk buffers (V8's stale .length), messages that quote
 * hostile values, Tensor#clone, Random's arguments, size bounds, forged runs and forged Tensors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

import {
  Adam,
  Dense,
  GRU,
  LSTM,
  Random,
  SGD,
  SimpleRNN,
  Tensor,
  clipGradNorm,
  getMaxTrainingBytes,
  getNumThreads,
  mseLoss,
  setMaxTrainingBytes,
  setNumThreads,
  softmaxCrossEntropy,
  type Recurrent,
} from '../lib/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

type ErrorClass = typeof TypeError | typeof RangeError;

/** fn must throw an instance of cls whose message matches `message`. */
function throws(fn: () => unknown, cls: ErrorClass, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof cls, `expected a ${cls.name}, got ${e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e)}`);
    assert.match(e.message, message);
    return true;
  });
}

type AnyCtor = new (o: never) => unknown;
const RECURRENT: [string, new (o: never) => Recurrent][] = [
  ['SimpleRNN', SimpleRNN as never],
  ['LSTM', LSTM as never],
  ['GRU', GRU as never],
];
const LAYERS: [string, AnyCtor][] = [...RECURRENT, ['Dense', Dense as never]];
const make = (C: AnyCtor, extra: object): unknown => new C({ inputSize: 2, units: 3, ...extra } as never);

test('a float64 value that overflows float32 is refused by loadStateDict of a float32 layer (RangeError naming the tensor)', () => {
  for (const [name, C] of LAYERS) {
    const layer = make(C, { seed: 1 }) as Recurrent | Dense;
    const live = layer.stateDict();
    const before = Object.fromEntries(Object.entries(live).map(([k, t]) => [k, t.data.slice()]));
    const key = Object.keys(live)[0];
    const dict = Object.fromEntries(Object.entries(live).map(([k, t]) => [k, Tensor.from(Float64Array.from(t.data, () => 0.5), t.shape)]));
    dict[key].data[1] = 1e300;
    throws(() => layer.loadStateDict(dict), RangeError, new RegExp(`loadStateDict: ${key} .*flat index 1 .*float32`));
    dict[key].data[1] = -1e39;
    throws(() => layer.loadStateDict(dict), RangeError, new RegExp(`loadStateDict: ${key}\\b.*float32`));
    for (const [k, t] of Object.entries(layer.stateDict())) assert.deepEqual(t.data, before[k], `${name}: ${k} changed by a refused load`);
    // In range it still converts (rounding), and a float64 layer takes the large value as is.
    dict[key].data[1] = 3e38;
    layer.loadStateDict(dict);
    assert.equal(layer.stateDict()[key].data[1], Math.fround(3e38));
    const wide = make(C, { seed: 1, dtype: 'float64' }) as Recurrent | Dense;
    dict[key].data[1] = 1e300;
    wide.loadStateDict(dict);
    assert.equal(wide.stateDict()[key].data[1], 1e300);
  }
});

test('initializer values that do not fit the layer dtype are refused (RangeError naming the option)', () => {
  for (const [name, C] of RECURRENT) {
    throws(() => make(C, { kernelInitializer: { name: 'constant', value: 1e39 } }), RangeError, /options\.kernelInitializer\.value.*float32/);
    throws(() => make(C, { biasInitializer: { name: 'constant', value: -1e39 } }), RangeError, /options\.biasInitializer\.value.*float32/);
    throws(() => make(C, { recurrentInitializer: { name: 'uniform', limit: 1e39 } }), RangeError, /options\.recurrentInitializer\.limit.*float32/);
    // float64: the limit's range 2·limit must stay finite
    throws(() => make(C, { dtype: 'float64', kernelInitializer: { name: 'uniform', limit: 1e308 } }), RangeError, /options\.kernelInitializer\.limit/);
    // malformed specs stay TypeErrors, and extra keys are named
    throws(() => make(C, { kernelInitializer: { name: 'constant', value: '1' } }), TypeError, /options\.kernelInitializer/);
    throws(() => make(C, { kernelInitializer: { name: 'constant', value: 1, limit: 2 } }), TypeError, /options\.kernelInitializer\.limit.*unknown.*name, value/);
    // in range is fine
    const big = make(C, { dtype: 'float64', kernelInitializer: { name: 'constant', value: 1e39 } }) as Recurrent;
    assert.equal(big.stateDict().weight_ih_l0.data[0], 1e39, name);
    const ok = make(C, { kernelInitializer: { name: 'constant', value: 3e38 } }) as Recurrent;
    assert.ok(ok.stateDict().weight_ih_l0.data.every((v) => v === Math.fround(3e38)), name);
  }
});

test('clip, cellClip and projClip above the native bound 1e30 are refused by the constructor', () => {
  for (const [name, C] of RECURRENT) {
    throws(() => make(C, { clip: 1e31 }), RangeError, /options\.clip: .*1e\+30/);
    throws(() => make(C, { clip: Infinity }), RangeError, /options\.clip/);
    // the bound itself passes the constructor and runs
    const layer = make(C, { clip: 1e30, seed: 2 }) as Recurrent;
    assert.equal(layer.forward(Tensor.from(new Float32Array(2 * 2 * 2).fill(0.5), [2, 2, 2])).output.shape[1], 3, name);
  }
  throws(() => new LSTM({ inputSize: 2, units: 3, cellClip: 1e31 }), RangeError, /options\.cellClip/);
  throws(() => new LSTM({ inputSize: 2, units: 3, projSize: 2, projClip: 1e31 }), RangeError, /options\.projClip/);
  new LSTM({ inputSize: 2, units: 3, projSize: 2, projClip: 1e30, cellClip: 1e30 }).forward(Tensor.from(new Float32Array(4), [1, 2, 2]));
});

test('activation alpha/beta outside the native range [-1e30, 1e30] are refused by the constructor', () => {
  throws(() => new SimpleRNN({ inputSize: 2, units: 3, activation: { name: 'leakyRelu', alpha: 1e31 } }), RangeError, /options\.activation\.alpha/);
  throws(() => new LSTM({ inputSize: 2, units: 3, recurrentActivation: { name: 'hardSigmoid', beta: -1e31 } }), RangeError, /options\.recurrentActivation\.beta/);
  throws(() => new GRU({ inputSize: 2, units: 3, activation: { name: 'scaledTanh', alpha: Infinity } }), RangeError, /options\.activation\.alpha/);
  throws(() => new GRU({ inputSize: 2, units: 3, activation: { name: 'scaledTanh', alpha: '2' as never } }), TypeError, /options\.activation\.alpha/);
  throws(() => new GRU({ inputSize: 2, units: 3, activation: { name: 'elu', gamma: 1 } as never }), TypeError, /options\.activation\.gamma.*unknown.*name, alpha, beta/);
  new SimpleRNN({ inputSize: 2, units: 3, activation: { name: 'leakyRelu', alpha: -1e30 } }).forward(Tensor.from(new Float32Array(4), [1, 2, 2]));
});

test('boolean options must be booleans', () => {
  const common = ['returnSequences', 'returnState', 'goBackwards', 'useBias'];
  const lists: [string, AnyCtor, string[]][] = [
    ['SimpleRNN', SimpleRNN as never, common],
    ['LSTM', LSTM as never, [...common, 'unitForgetBias', 'peepholes', 'inputGate', 'forgetGate', 'outputGate', 'coupledInputForget', 'fullGateRecurrence']],
    ['GRU', GRU as never, [...common, 'resetAfter']],
    ['Dense', Dense as never, ['useBias']],
  ];
  for (const [name, C, flags] of lists) {
    for (const key of flags) {
      throws(() => make(C, { [key]: 0 }), TypeError, new RegExp(`^options\\.${key}: expected a boolean, got 0$`));
      throws(() => make(C, { [key]: 'true' }), TypeError, new RegExp(`options\\.${key}: expected a boolean`));
      throws(() => make(C, { [key]: null }), TypeError, new RegExp(`options\\.${key}: expected a boolean`));
    }
    // false really means false
    const noBias = make(C, { useBias: false }) as Recurrent | Dense;
    assert.ok(!Object.keys(noBias.stateDict()).some((k) => k.startsWith('bias')), `${name}: useBias false`);
  }
  const gru = new GRU({ inputSize: 2, units: 3 });
  const x = Tensor.from(new Float32Array(4), [1, 2, 2]);
  throws(() => gru.forward(x, { training: 1 as never }), TypeError, /GRU\.forward: options\.training: expected a boolean, got 1/);
  const dense = new Dense({ inputSize: 2, units: 3 });
  throws(() => dense.forward(Tensor.from(new Float32Array(2), [1, 2]), { training: 'yes' as never }), TypeError, /Dense\.forward: options\.training: expected a boolean/);
  throws(() => gru.loadStateDict(gru.stateDict(), { strict: 0 as never }), TypeError, /loadStateDict: options\.strict: expected a boolean, got 0/);
});

test('unknown options are refused, naming the key and listing the valid names', () => {
  throws(() => new GRU({ inputSize: 2, units: 3, peepholes: true } as never), TypeError, /options\.peepholes: unknown option for GRU; valid options: inputSize, units, .*resetAfter/);
  throws(() => new SimpleRNN({ inputSize: 2, units: 3, recurrentActivation: 'sigmoid' } as never), TypeError, /options\.recurrentActivation: unknown option for SimpleRNN; valid options: .*activation/);
  throws(() => new LSTM({ inputSize: 2, units: 3, resetAfter: false } as never), TypeError, /options\.resetAfter: unknown option for LSTM; valid options: .*cellBlockSize/);
  throws(() => new LSTM({ inputSize: 2, units: 3, returnSequence: true, dropOut: 0.1 } as never), TypeError, /options\.returnSequence, options\.dropOut: unknown options for LSTM/);
  throws(() => new Dense({ inputSize: 2, units: 3, returnSequences: true } as never), TypeError, /options\.returnSequences: unknown option for Dense; valid options: inputSize, units, activation, useBias, seed, dtype/);
  throws(() => new Adam({ learningrate: 0.1 } as never), TypeError, /Adam: options\.learningrate: unknown option; valid options: learningRate, lr, clipNorm, clipValue, weightDecay, schedule, beta1, beta2, eps, amsgrad/);
  throws(() => new SGD({ lr: 0.1, nesterow: true } as never), TypeError, /SGD: options\.nesterow: unknown option; valid options: learningRate, lr, .*momentum, dampening, nesterov/);
  throws(() => new Adam({ lr: 0.1, learningRate: 0.1 }), TypeError, /Adam: options\.learningRate and options\.lr/);
  throws(() => new Adam(null as never), TypeError, /Adam: options: expected an object/);

  const x = Tensor.from(new Float32Array(4), [1, 2, 2]);
  for (const [name, C] of RECURRENT) {
    const layer = make(C, { returnSequences: true }) as Recurrent;
    throws(() => layer.forward(x, { length: [2] } as never), TypeError, new RegExp(`${name}\\.forward: options\\.length: unknown option; valid options: initialState, training, lengths`));
    const { run, output } = layer.forward(x, { training: true });
    throws(() => layer.backward(run!, output, { dState: [] } as never), TypeError, new RegExp(`${name}\\.backward: options\\.dState: unknown option; valid options: dStates`));
    throws(() => layer.backward(run!, output, 5 as never), TypeError, new RegExp(`${name}\\.backward: options: expected an object`));
    throws(() => layer.loadStateDict(layer.stateDict(), { stric: false } as never), TypeError, /loadStateDict: options\.stric: unknown option; valid options: strict/);
  }
  const dense = new Dense({ inputSize: 2, units: 3 });
  throws(() => dense.forward(Tensor.from(new Float32Array(2), [1, 2]), { trainig: true } as never), TypeError, /Dense\.forward: options\.trainig: unknown option; valid options: training/);
});

test('seed must be a safe integer', () => {
  for (const [name, C] of LAYERS) {
    for (const seed of ['x', '1', 1.5, NaN, Infinity, 2 ** 53, null, {}]) {
      throws(() => make(C, { seed }), TypeError, /^options\.seed: expected an integer/);
    }
    const w = (seed: number) => (make(C, { seed }) as Recurrent | Dense).stateDict().weight_ih_l0 ?? (make(C, { seed }) as Dense).stateDict().weight;
    for (const seed of [0, 7, -1, 2 ** 40]) assert.deepEqual(w(seed).data, w(seed).data, `${name}: seed ${seed}`);
  }
  throws(() => new Random('x' as never), TypeError, /Random: seed: expected an integer/);
  throws(() => new Random(0.5), TypeError, /Random: seed/);
  assert.equal(new Random(3).next(), new Random(3).next());
});

test('Tensor.zeros checks its shape like Tensor.from', () => {
  for (const shape of [[-1], [2, 1.5], [NaN], [Infinity], 'abc', 3, null, [2, '3']]) {
    throws(() => Tensor.zeros(shape as never), TypeError, /^Tensor\.zeros: shape must be an array of non-negative integers/);
  }
  throws(() => Tensor.zeros([2], 'float16' as never), TypeError, /Tensor\.zeros: dtype/);
  assert.deepEqual(Tensor.zeros([2, 0, 3]).shape, [2, 0, 3]);
  assert.equal(Tensor.zeros([2, 3], 'float64').data.constructor, Float64Array);
});

test('Tensor.from refuses arrays with a non-number element, naming the index', () => {
  throws(() => Tensor.from(['a'] as never, [1]), TypeError, /Tensor\.from: data\[0\] must be a number, got "a"/);
  throws(() => Tensor.from([1, 2, undefined] as never, [3]), TypeError, /Tensor\.from: data\[2\] must be a number, got undefined/);
  throws(() => Tensor.from([1, null, 3] as never, [3], 'float64'), TypeError, /Tensor\.from: data\[1\]/);
  throws(() => Tensor.from([1, 2n] as never, [2]), TypeError, /Tensor\.from: data\[1\]/);
  // NaN and ±Infinity are numbers: kept.
  const t = Tensor.from([NaN, Infinity, -Infinity, 1], [4]);
  assert.ok(Number.isNaN(t.data[0]) && t.data[1] === Infinity && t.data[2] === -Infinity && t.data[3] === 1);
});

test('the declared type of Tensor.from accepts what it accepts at run time, and nothing else', () => {
  // Run time: only Float32Array, Float64Array and arrays of numbers.
  throws(() => Tensor.from(new Int32Array(2) as never, [2]), TypeError, /Tensor\.from: data must be a Float32Array/);
  // Compile time: the same set (type-checked with the project's compiler settings).
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rnnkit-types-'));
  try {
    const file = path.join(dir, 'probe.mts');
    const lines = [
      `import { Tensor } from ${JSON.stringify(path.join(root, 'lib', 'tensor.js'))};`,
      'const ro: readonly number[] = [1, 2];',
      'Tensor.from(new Float32Array(2), [2]);',
      'Tensor.from(new Float64Array(2), [2]);',
      'Tensor.from([1, 2], [2]);',
      'Tensor.from(ro, [2]);',
      'Tensor.from(new Int32Array(2), [2]);', // line 7: must not type-check
      'Tensor.from({ length: 2, 0: 1, 1: 2 }, [2]);', // line 8: must not type-check
    ];
    writeFileSync(file, lines.join('\n') + '\n');
    const program = ts.createProgram([file], {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      types: [],
    });
    const errors = ts
      .getPreEmitDiagnostics(program)
      .map((d) => ({ line: d.file ? d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1 : 0, file: d.file?.fileName, text: ts.flattenDiagnosticMessageText(d.messageText, ' ') }));
    const elsewhere = errors.filter((e) => e.file !== file);
    assert.deepEqual(elsewhere, [], 'lib/tensor.ts itself should type-check');
    assert.deepEqual([...new Set(errors.map((e) => e.line))].sort(), [7, 8], `type errors: ${JSON.stringify(errors)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('when the addon cannot be loaded, the error names an npm script that exists (npm run compile)', () => {
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  // A copy of lib/native.ts in a package with no build/ and no prebuilds/.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rnnkit-noaddon-'));
  try {
    mkdirSync(path.join(dir, 'lib'));
    copyFileSync(path.join(root, 'lib', 'native.ts'), path.join(dir, 'lib', 'native.ts'));
    writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'rnnkit-noaddon', type: 'module' }));
    symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
    // RNNKIT_ADDON (a build to load instead, e.g. a sanitizer build) would bypass the failing lookup.
    const env = { ...process.env, RNNKIT_ADDON: '' };
    const res = spawnSync(process.execPath, ['--import', 'tsx', path.join(dir, 'lib', 'native.ts')], { cwd: root, env, encoding: 'utf8', timeout: 60_000 });
    assert.notEqual(res.status, 0, 'loading should fail without an addon');
    assert.match(res.stderr, /rnnkit: the native addon could not be loaded/);
    const scripts = [...res.stderr.matchAll(/npm run ([\w:-]+)/g)].map((m) => m[1]);
    assert.ok(scripts.length > 0, `the message should say how to build: ${res.stderr}`);
    for (const s of scripts) assert.ok(s in pkg.scripts, `the message names \`npm run ${s}\`, which package.json does not have`);
    assert.ok(scripts.includes('compile'), `expected \`npm run compile\` in: ${res.stderr}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------------------------
// Regressions for the fuzzer's findings (each once gave a raw engine error, or passed silently)

type Resizable = ArrayBuffer & { resize(n: number): void };
const resizableBuffer = (bytes: number, max = 2 * bytes): Resizable =>
  new (ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => Resizable)(bytes, { maxByteLength: max });
const detach = (buffer: ArrayBufferLike): void => void structuredClone(buffer, { transfer: [buffer as ArrayBuffer] });

/** Values whose conversion to a string throws: String(v) and `${v}` fail on both. */
const UNPRINTABLE: [string, () => unknown][] = [
  ['a null-prototype object', () => Object.create(null)],
  ['an object whose toPrimitive returns a symbol', () => ({ [Symbol.toPrimitive]: () => Symbol('s') })],
  ['a symbol', () => Symbol('s')],
];

test('v8-stale-length-detached: a detached tensor is refused after resizable-backed tensors warmed up the checks; a shrunk one is not called detached', () => {
  // Node 20's optimized code read a detached array's .length as its old length once typed arrays
  // over resizable buffers had reached checkTensor: the detached target then passed (and was read as NaN).
  const pred = () => Tensor.from(new Float32Array(6).fill(1), [2, 3]);
  for (let i = 0; i < 20000; i++) {
    const a = i % 2 ? new Float32Array(resizableBuffer(24)) : new Float32Array(6);
    mseLoss(pred(), Tensor.from(a, [2, 3]));
  }
  const gone = Tensor.from(new Float32Array(6), [2, 3]);
  detach(gone.data.buffer);
  throws(() => mseLoss(pred(), gone), TypeError, /^mseLoss: target .*: its ArrayBuffer is detached/);
  throws(() => mseLoss(gone, pred()), TypeError, /^mseLoss: pred: its ArrayBuffer is detached/);
  const gru = new GRU({ inputSize: 2, units: 3, seed: 1 });
  const x = Tensor.from(new Float32Array(2 * 2 * 2), [2, 2, 2]);
  const detachedX = Tensor.from(new Float32Array(8), [2, 2, 2]);
  detach(detachedX.data.buffer);
  throws(() => gru.forward(detachedX), TypeError, /^GRU\.forward: input: its ArrayBuffer is detached/);
  const { run } = gru.forward(x, { training: true });
  const dOut = Tensor.from(new Float32Array(6), [2, 3]);
  detach(dOut.data.buffer);
  throws(() => gru.backward(run!, dOut), TypeError, /^GRU\.backward: dOutput: its ArrayBuffer is detached/);
  throws(() => Tensor.from(gone.data, [2, 3]), RangeError, /^Tensor\.from: data's ArrayBuffer is detached/);
  // A fixed-length view over a resizable buffer shrunk below it: out of bounds, not "detached".
  const ab = resizableBuffer(24);
  const shrunk = Tensor.from(new Float32Array(ab, 0, 6), [2, 3]);
  ab.resize(8);
  throws(() => mseLoss(pred(), shrunk), TypeError, /^mseLoss: target .*: its data lies outside its resizable ArrayBuffer \(was the buffer shrunk/);
  assert.doesNotThrow(() => mseLoss(pred(), Tensor.from(new Float32Array(resizableBuffer(24)), [2, 3])));
  // A layer whose own parameter was detached keeps running on its prepared copy of the weights, and
  // once told the weights changed says which one is gone.
  detach(gru.stateDict().weight_hh_l0.data.buffer);
  assert.doesNotThrow(() => gru.forward(x));
  gru.markWeightsChanged();
  throws(() => gru.forward(x), TypeError, /^GRU\.forward: parameter weight_hh_l0: its ArrayBuffer is detached/);
  throws(() => gru.loadStateDict(new GRU({ inputSize: 2, units: 3 }).stateDict()), TypeError, /loadStateDict: the layer's parameter weight_hh_l0: .*detached/);
});

test('message-string-coercion: values that cannot become strings still get the intended TypeError/RangeError naming the argument', () => {
  const threads = getNumThreads(), bytes = getMaxTrainingBytes();
  for (const [label, v] of UNPRINTABLE) {
    throws(() => setNumThreads(v() as never), RangeError, /^setNumThreads: n must be an integer/);
    throws(() => setMaxTrainingBytes(v() as never), RangeError, /^setMaxTrainingBytes: bytes must be/);
    for (const [, C] of LAYERS) throws(() => make(C, { dtype: v() }), TypeError, /^options\.dtype: expected 'float32' or 'float64'/);
    throws(() => new LSTM({ inputSize: 2, units: 3, variant: v() as never }), TypeError, /^options\.variant: expected one of V, /);
    throws(() => new Dense({ inputSize: 2, units: 3, activation: v() as never }), TypeError, /^options\.activation: expected one of 'linear'/);
    throws(() => new Adam({ lr: v() as never }), RangeError, /^Adam: lr: expected a number/);
    throws(() => new Adam({ beta2: v() as never }), RangeError, /^Adam: beta2: expected a number/);
    throws(() => new SGD({ lr: 0.1, momentum: v() as never }), RangeError, /^SGD: momentum: expected a number/);
    throws(() => clipGradNorm([Tensor.zeros([2])], v() as never), RangeError, /^clipGradNorm: maxNorm: expected a number/);
    throws(() => softmaxCrossEntropy(Tensor.zeros([2, 3]), [0, v() as never]), RangeError, /^softmaxCrossEntropy: labels\[1\] must be an integer/);
    assert.equal(getNumThreads(), threads, label);
    assert.equal(getMaxTrainingBytes(), bytes, label);
  }
});

test('message-json-stringify: activations and initializers that JSON cannot print (a bigint, a cycle) are refused naming the option', () => {
  const cyclic: Record<string, unknown> = { name: 'nope' };
  cyclic.self = cyclic;
  for (const v of [10n, cyclic, { name: 5n }]) {
    throws(() => new SimpleRNN({ inputSize: 2, units: 3, activation: v as never }), TypeError, /^options\.activation: expected one of sigmoid, tanh/);
    throws(() => new LSTM({ inputSize: 2, units: 3, recurrentActivation: v as never }), TypeError, /^options\.recurrentActivation: expected one of/);
    for (const [, C] of RECURRENT) {
      throws(() => make(C, { kernelInitializer: v }), TypeError, /^options\.kernelInitializer: expected one of 'glorotUniform'/);
      throws(() => make(C, { biasInitializer: v }), TypeError, /^options\.biasInitializer: expected one of/);
    }
  }
  throws(() => new GRU({ inputSize: 2, units: 3, activation: 'tan' as never }), TypeError, /options\.activation: .*got "tan"$/);
});

test('tensor-clone-detached: Tensor#clone of a detached or shrunk buffer is a TypeError naming clone', () => {
  const t = Tensor.from(new Float32Array([1, 2, 3, 4]), [2, 2]);
  const copy = t.clone();
  assert.deepEqual([...copy.data], [1, 2, 3, 4]);
  assert.notEqual(copy.data.buffer, t.data.buffer);
  detach(t.data.buffer);
  throws(() => t.clone(), TypeError, /^Tensor#clone: its ArrayBuffer is detached/);
  const ab = resizableBuffer(16);
  const s = Tensor.from(new Float64Array(ab, 0, 2), [2]);
  ab.resize(8);
  throws(() => s.clone(), TypeError, /^Tensor#clone: its data lies outside its resizable ArrayBuffer/);
  // An empty tensor over a detached buffer has nothing to copy.
  const empty = Tensor.from(new Float64Array(0), [0, 3]);
  detach(empty.data.buffer);
  assert.deepEqual(empty.clone().shape, [0, 3]);
  assert.equal(empty.clone().dtype, 'float64');
});

test('random-methods-unchecked: Random#uniform and Random#int check their arguments', () => {
  const r = new Random(1);
  for (const v of ['1', null, undefined, {}, Object.create(null), 1n, Symbol('s')]) {
    throws(() => r.uniform(v as never, 1), TypeError, /^Random#uniform: lo: expected a finite number/);
    throws(() => r.uniform(0, v as never), TypeError, /^Random#uniform: hi: expected a finite number/);
    throws(() => r.int(v as never), TypeError, /^Random#int: n: expected a positive integer/);
  }
  throws(() => r.uniform(NaN, 1), RangeError, /^Random#uniform: lo/);
  throws(() => r.uniform(0, Infinity), RangeError, /^Random#uniform: hi/);
  throws(() => r.uniform(-Number.MAX_VALUE, Number.MAX_VALUE), RangeError, /^Random#uniform: hi - lo/);
  for (const n of [0, -1, 1.5, NaN, Infinity, 2 ** 53]) throws(() => r.int(n), RangeError, /^Random#int: n: expected a positive integer/);
  // Valid calls draw as before.
  const a = new Random(9), b = new Random(9);
  const u = a.uniform(-2, 3);
  assert.equal(u, -2 + 5 * b.next());
  assert.ok(u >= -2 && u < 3);
  const k = a.int(7);
  assert.equal(k, Math.floor(b.next() * 7));
});

test('unbounded-sizes: sizes are below 2^31 and every parameter or tensor fits a typed array (checked before allocating)', () => {
  for (const [, C] of LAYERS) {
    throws(() => new C({ inputSize: 2 ** 31, units: 1 } as never), RangeError, /^options\.inputSize: expected a positive integer at most 2147483647/);
    throws(() => new C({ inputSize: 1, units: 2 ** 31 } as never), RangeError, /^options\.units: expected a positive integer at most 2147483647/);
    throws(() => new C({ inputSize: 2 ** 31 - 1, units: 2 ** 31 - 1 } as never), RangeError, /options\.inputSize=2147483647, options\.units=2147483647: parameter weight\S* .* would have \d+ elements, more than a typed array can hold/);
  }
  throws(() => new GRU({ inputSize: 1, units: 2 ** 20 }), RangeError, /options\.units=1048576: parameter weight_hh_l0 \[3145728, 1048576\] would have 3298534883328 elements/);
  throws(() => new Dense({ inputSize: 2 ** 20, units: 2 ** 20 }), RangeError, /options\.inputSize=1048576, options\.units=1048576: parameter weight \[1048576, 1048576\] would have 1099511627776 elements/);
  throws(() => new LSTM({ inputSize: 2, units: 3, projSize: 2 ** 31 }), RangeError, /^options\.projSize: expected a positive integer at most/);
  throws(() => new LSTM({ inputSize: 2, units: 4, cellBlockSize: 2 ** 32 }), RangeError, /^options\.cellBlockSize: expected a positive integer at most/);
  throws(() => new LSTM({ inputSize: 1, units: 2 ** 16, projSize: 2 ** 16 }), RangeError, /options\.projSize=65536: parameter weight_hh_l0 .*elements/);
  throws(() => Tensor.zeros([2 ** 20, 2 ** 20]), RangeError, /^Tensor\.zeros: shape \[1048576, 1048576\] would have 1099511627776 elements, more than a typed array can hold/);
  throws(() => Tensor.zeros([2 ** 33], 'float64'), RangeError, /^Tensor\.zeros: shape \[8589934592\]/);
  // Sizes within the bounds still work, and an empty shape with a huge dimension is no allocation.
  assert.equal(new Dense({ inputSize: 1, units: 1000 }).stateDict().weight.size, 1000);
  assert.deepEqual(Tensor.zeros([2 ** 40, 0]).shape, [2 ** 40, 0]);
});

test('forged-run-fields: backward takes only the (frozen) runs its own forward issued', () => {
  const x = Tensor.from(new Float32Array(2 * 3 * 2).fill(0.5), [2, 3, 2]);
  for (const [name, C] of RECURRENT) {
    const layer = make(C, { seed: 3 }) as Recurrent;
    const { run, output } = layer.forward(x, { training: true });
    const re = new RegExp(`^${name}\\.backward: run must be the \\.run of a forward\\(x, \\{ training: true \\}\\) of this layer, got an object this layer did not issue \\(not a training run of this layer\\)`);
    for (const forged of [{ ...run!, batch: 2 ** 33 }, { ...run!, batch: 2 ** 31 }, { ...run!, steps: 4 }, Object.create(run!)]) {
      throws(() => layer.backward(forged as never, output), TypeError, re);
    }
    throws(() => layer.backward(null as never, output), TypeError, new RegExp(`^${name}\\.backward: run must be .*, got null`));
    throws(() => make(C, { seed: 3 }) && (make(C, { seed: 3 }) as Recurrent).backward(run!, output), TypeError, /not a training run of this layer/);
    assert.ok(Object.isFrozen(run), `${name}: the run is frozen`);
    assert.throws(() => ((run as { batch: number }).batch = 2 ** 33), TypeError);
    assert.deepEqual(layer.backward(run!, output).input.shape, [2, 3, 2], name);
  }
  const dense = new Dense({ inputSize: 2, units: 3, seed: 1 });
  const xd = Tensor.from(new Float32Array(4).fill(0.5), [2, 2]);
  const { run, output } = dense.forward(xd, { training: true });
  throws(() => dense.backward({ ...run!, batch: 2 ** 33 }, output), TypeError, /^Dense\.backward: run must be .*not a training run of this layer/);
  assert.deepEqual(dense.backward(run!, output).input.shape, [2, 2]);
});

test('forged-tensor-rereads: an object made from Tensor.prototype (getters that change) is not a Tensor', () => {
  const fake = (data: () => unknown, shape: () => unknown): Tensor =>
    Object.create(Tensor.prototype, { data: { get: data, enumerable: true }, shape: { get: shape, enumerable: true } }) as Tensor;
  const toggling = (n: number, shape: number[]): Tensor => {
    let reads = 0;
    const a = new Float32Array(n), short = new Float32Array(1);
    return fake(() => (reads++ < 3 ? a : short), () => shape);
  };
  const forgedRe = /made from Tensor\.prototype, not by Tensor\.from or Tensor\.zeros/;
  for (const [name, C] of RECURRENT) {
    const layer = make(C, { seed: 3, returnSequences: true }) as Recurrent;
    const x = Tensor.from(new Float32Array(2 * 3 * 2).fill(0.5), [2, 3, 2]);
    throws(() => layer.forward(toggling(12, [2, 3, 2])), TypeError, new RegExp(`^${name}\\.forward: input must be a Tensor`));
    const { run } = layer.forward(x, { training: true });
    throws(() => layer.backward(run!, toggling(18, [2, 3, 3])), TypeError, new RegExp(`^${name}\\.backward: dOutput: expected a Tensor .*${forgedRe.source}`));
    const dict = { ...layer.stateDict(), weight_ih_l0: toggling(layer.stateDict().weight_ih_l0.size, [...layer.stateDict().weight_ih_l0.shape]) };
    throws(() => layer.loadStateDict(dict), TypeError, new RegExp(`^loadStateDict: weight_ih_l0: expected a Tensor .*${forgedRe.source}`));
  }
  const w = Tensor.zeros([3]);
  throws(() => new Adam().step({ w }, { w: toggling(3, [3]) }), TypeError, /^Adam\.step: grads\.w .*made from Tensor\.prototype/);
  throws(() => mseLoss(Tensor.zeros([3]), toggling(3, [3])), TypeError, /^mseLoss: target .*made from Tensor\.prototype/);
  throws(() => clipGradNorm([toggling(3, [3])], 1), TypeError, /^clipGradNorm: grads\[0\] must be a Tensor/);
  throws(() => toggling(3, [3]).clone(), TypeError, /^Tensor#clone: this is not a Tensor/);
  // Real tensors are frozen: what a check read is what the call uses.
  const t = Tensor.zeros([2]);
  assert.ok(Object.isFrozen(t) && Tensor.isTensor(t) && !Tensor.isTensor(toggling(2, [2])));
  assert.throws(() => ((t as { data: unknown }).data = new Float32Array(9)), TypeError);
});

test("the native parameter table (cells/cell_params.h) is the one lib/native.ts's CELL_PARAMETERS names", async () => {
  const { native, CELL_PARAMETERS } = await import('../lib/native.js');
  const table = native.cellParameters();
  assert.deepEqual(table.map((p) => p.name), [...CELL_PARAMETERS]);
  for (const p of table) {
    assert.equal(p.gradient, `d${p.name[0].toUpperCase()}${p.name.slice(1)}`, `${p.name}: gradient name`);
    assert.match(p.torch, /^(weight|bias)_[a-z]+$/, `${p.name}: PyTorch stem`);
  }
  // Every native parameter reaches the layers' names: an LSTM with peepholes, a projection and full
  // gate recurrence stores one PyTorch-named tensor per table row.
  const layer = new LSTM({ inputSize: 3, units: 4, projSize: 2, peepholes: true, fullGateRecurrence: true, seed: 1 });
  const names = Object.keys(layer.stateDict());
  for (const p of table) assert.ok(names.includes(`${p.torch}_l0`), `${p.torch}_l0 in ${names.join(', ')}`);
});
