/**
 * Checks the ONNX oracle (test/helpers/onnx.ts): onnxruntime running the one-operator models it
 * builds must agree with a float64 reference of the ONNX equations, and torchToOnnx must map
 * PyTorch weights to ONNX weights that compute the same function.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import onnxProto from 'onnx-proto';
import type { onnx } from 'onnx-proto';

import {
  ONNX_IR_VERSION,
  ONNX_OPSET,
  buildRnnModel,
  createRunner,
  onnxGateCount,
  onnxNumDirections,
  onnxToTorch,
  torchToOnnx,
} from './helpers/onnx.js';
import type { OnnxCell, OnnxDirection, OnnxRnnSpec, TorchRnnWeights } from './helpers/onnx.js';
import { onnxReference, torchReference } from './helpers/onnx-reference.js';

/** |actual - expected| <= TOL * max(1, |expected|) */
const TOL = 1e-5;
const DIRECTIONS: readonly OnnxDirection[] = ['forward', 'reverse', 'bidirectional'];

// ---------------------------------------------------------------------------------------------
// helpers

/** Deterministic PRNG (mulberry32) so that a failure can be replayed. */
class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  floats(n: number, scale: number): Float32Array {
    return Float32Array.from({ length: n }, () => (2 * this.next() - 1) * scale);
  }
}

function unravel(index: number, dims: readonly number[]): number[] {
  const coords = new Array<number>(dims.length);
  for (let k = dims.length - 1; k >= 0; k--) {
    coords[k] = index % dims[k];
    index = Math.floor(index / dims[k]);
  }
  return coords;
}

/** Asserts closeness; on failure reports the largest difference and where it occurred. */
function assertClose(
  what: string,
  actual: ArrayLike<number> | undefined,
  expected: ArrayLike<number> | undefined,
  dims: readonly number[],
  tol = TOL,
): void {
  assert.ok(actual !== undefined, `${what}: missing result`);
  assert.ok(expected !== undefined, `${what}: missing expected value`);
  const size = dims.reduce((a, b) => a * b, 1);
  assert.equal(actual.length, size, `${what}: length ${actual.length}, expected ${size} = [${dims.join(', ')}]`);
  assert.equal(expected.length, size, `${what}: reference length ${expected.length}, expected ${size}`);
  let worst = -1;
  let worstErr = -1;
  for (let k = 0; k < size; k++) {
    const err = Math.abs(actual[k] - expected[k]) / Math.max(1, Math.abs(expected[k]));
    if (!(err <= worstErr)) {
      // also catches NaN
      worst = k;
      worstErr = Number.isNaN(err) ? Infinity : err;
    }
  }
  if (size > 0 && !(worstErr <= tol)) {
    assert.fail(
      `${what}: largest difference ${Math.abs(actual[worst] - expected[worst]).toExponential(3)} ` +
        `(relative ${worstErr.toExponential(3)} > ${tol}) at [${unravel(worst, dims).join(', ')}] ` +
        `of [${dims.join(', ')}]: got ${actual[worst]}, expected ${expected[worst]}`,
    );
  }
}

function describe(spec: OnnxRnnSpec): string {
  const flags = [
    spec.direction ?? 'forward',
    `T=${spec.T} N=${spec.N} I=${spec.I} H=${spec.H}`,
    spec.B === undefined ? 'no bias' : 'bias',
    spec.P !== undefined ? 'peepholes' : '',
    spec.withInitialH === true ? 'h0' : '',
    spec.withInitialC === true ? 'c0' : '',
    spec.linearBeforeReset !== undefined ? `lbr=${spec.linearBeforeReset ? 1 : 0}` : '',
    spec.clip !== undefined ? `clip=${spec.clip}` : '',
    spec.inputForget === true ? 'input_forget' : '',
    spec.activations !== undefined ? `act=${spec.activations.join('/')}` : '',
  ];
  return `${spec.op} ${flags.filter((s) => s !== '').join(', ')}`;
}

interface CaseOptions {
  direction: OnnxDirection;
  bias?: boolean;
  peepholes?: boolean;
  initialH?: boolean;
  initialC?: boolean;
  linearBeforeReset?: boolean;
  extra?: Partial<OnnxRnnSpec>;
}

/** A random spec with small shapes (T<=5, N<=3, I<=5, H<=6). */
function randomSpec(rng: Rng, op: OnnxCell, o: CaseOptions): OnnxRnnSpec {
  const T = rng.int(1, 5);
  const N = rng.int(1, 3);
  const I = rng.int(1, 5);
  const H = rng.int(1, 6);
  const dirs = onnxNumDirections(o.direction);
  const G = onnxGateCount(op);
  const spec: OnnxRnnSpec = {
    op,
    T,
    N,
    I,
    H,
    direction: o.direction,
    W: rng.floats(dirs * G * H * I, 0.8),
    R: rng.floats(dirs * G * H * H, 0.8),
    withInitialH: o.initialH === true,
    withInitialC: o.initialC === true,
    ...o.extra,
  };
  if (o.bias !== false) spec.B = rng.floats(dirs * 2 * G * H, 0.5);
  if (o.peepholes === true) spec.P = rng.floats(dirs * 3 * H, 0.6);
  if (o.linearBeforeReset !== undefined) spec.linearBeforeReset = o.linearBeforeReset;
  return spec;
}

interface Inputs {
  x: Float32Array;
  h0?: Float32Array;
  c0?: Float32Array;
}

function randomInputs(rng: Rng, spec: OnnxRnnSpec, stateScale = 1): Inputs {
  const dirs = onnxNumDirections(spec.direction);
  const inputs: Inputs = { x: rng.floats(spec.T * spec.N * spec.I, 1.5) };
  if (spec.withInitialH === true) inputs.h0 = rng.floats(dirs * spec.N * spec.H, stateScale);
  if (spec.withInitialC === true) inputs.c0 = rng.floats(dirs * spec.N * spec.H, 2 * stateScale);
  return inputs;
}

/** Runs onnxruntime on `spec` and compares Y, Y_h (and Y_c) with the float64 reference. */
async function checkAgainstReference(spec: OnnxRnnSpec, rng: Rng, runs = 1, stateScale = 1): Promise<void> {
  const what = describe(spec);
  const dirs = onnxNumDirections(spec.direction);
  const runner = await createRunner(spec);
  try {
    for (let r = 0; r < runs; r++) {
      const { x, h0, c0 } = randomInputs(rng, spec, stateScale);
      const got = await runner.run(x, h0, c0);
      const want = onnxReference(spec, x, h0, c0);
      const tag = runs > 1 ? `${what} (run ${r})` : what;
      assertClose(`${tag}: Y`, got.Y, want.Y, [spec.T, dirs, spec.N, spec.H]);
      assertClose(`${tag}: Y_h`, got.Y_h, want.Y_h, [dirs, spec.N, spec.H]);
      if (spec.op === 'LSTM') assertClose(`${tag}: Y_c`, got.Y_c, want.Y_c, [dirs, spec.N, spec.H]);
      else assert.equal(got.Y_c, undefined);
    }
  } finally {
    await runner.release();
  }
}

// ---------------------------------------------------------------------------------------------
// onnxruntime vs the float64 reference of the ONNX equations

test('LSTM (with and without peepholes) matches the float64 reference', async () => {
  const rng = new Rng(0x15f3);
  for (const direction of DIRECTIONS) {
    for (const peepholes of [false, true]) {
      for (const [initialH, initialC] of [[false, false], [true, false], [true, true], [false, true]] as const) {
        const bias = !(peepholes && initialH); // also cover a model without B
        await checkAgainstReference(
          randomSpec(rng, 'LSTM', { direction, peepholes, initialH, initialC, bias }),
          rng,
        );
      }
    }
  }
});

test('GRU (linear_before_reset 0 and 1) matches the float64 reference', async () => {
  const rng = new Rng(0x6a7);
  for (const direction of DIRECTIONS) {
    for (const linearBeforeReset of [false, true]) {
      for (const initialH of [false, true]) {
        const bias = !(linearBeforeReset && !initialH);
        await checkAgainstReference(randomSpec(rng, 'GRU', { direction, linearBeforeReset, initialH, bias }), rng);
      }
    }
  }
});

test('RNN (Tanh) matches the float64 reference', async () => {
  const rng = new Rng(0x7a1);
  for (const direction of DIRECTIONS) {
    for (const initialH of [false, true]) {
      for (const bias of [true, false]) {
        await checkAgainstReference(randomSpec(rng, 'RNN', { direction, initialH, bias }), rng);
      }
    }
  }
});

test('attributes: clip, input_forget, activations with alpha/beta, explicit layout', async () => {
  const rng = new Rng(0xa77);
  const cases: Array<[OnnxCell, CaseOptions]> = [
    // Large initial states and a small clip: exercises clipping of every gate input (Ct itself
    // goes into h() unclipped).
    ['LSTM', { direction: 'forward', initialH: true, initialC: true, peepholes: true, extra: { clip: 0.3 } }],
    ['LSTM', { direction: 'bidirectional', initialH: true, initialC: true, extra: { clip: 0.5 } }],
    ['LSTM', { direction: 'forward', initialC: true, extra: { inputForget: true } }],
    ['LSTM', { direction: 'reverse', peepholes: true, initialC: true, extra: { inputForget: true, clip: 0.7 } }],
    [
      'LSTM',
      {
        direction: 'bidirectional',
        initialH: true,
        initialC: true,
        extra: {
          activations: ['HardSigmoid', 'Tanh', 'Softsign', 'Sigmoid', 'LeakyRelu', 'Tanh'],
          activationAlpha: [0.25, 0.1],
          activationBeta: [0.45],
        },
      },
    ],
    ['GRU', { direction: 'forward', initialH: true, linearBeforeReset: false, extra: { clip: 0.4 } }],
    ['GRU', { direction: 'reverse', initialH: true, linearBeforeReset: true, extra: { clip: 0.4 } }],
    [
      'GRU',
      {
        direction: 'bidirectional',
        initialH: true,
        linearBeforeReset: true,
        extra: {
          activations: ['Sigmoid', 'Softsign', 'HardSigmoid', 'Elu'],
          activationAlpha: [0.3, 0.8],
          activationBeta: [0.55],
        },
      },
    ],
    ['RNN', { direction: 'forward', initialH: true, extra: { activations: ['Relu'] } }],
    ['RNN', { direction: 'reverse', extra: { activations: ['Sigmoid'], clip: 0.5 } }],
    [
      'RNN',
      {
        direction: 'bidirectional',
        initialH: true,
        extra: { activations: ['LeakyRelu', 'ScaledTanh'], activationAlpha: [0.2, 1.5], activationBeta: [0.7] },
      },
    ],
    ['LSTM', { direction: 'forward', initialH: true, extra: { layout: 0 } }],
  ];
  for (const [op, options] of cases) {
    await checkAgainstReference(randomSpec(rng, op, options), rng, 1, 3);
  }
});

test('one runner, many runs (and intraOpNumThreads > 1)', async () => {
  const rng = new Rng(0x2a2);
  await checkAgainstReference(
    randomSpec(rng, 'LSTM', { direction: 'bidirectional', initialH: true, initialC: true, peepholes: true }),
    rng,
    6,
  );
  await checkAgainstReference(
    randomSpec(rng, 'GRU', { direction: 'forward', initialH: true, linearBeforeReset: true, extra: { threads: 2 } }),
    rng,
    4,
  );
  await checkAgainstReference(randomSpec(rng, 'RNN', { direction: 'reverse', extra: { threads: 3 } }), rng, 4);
});

// ---------------------------------------------------------------------------------------------
// the model itself and input validation

/** The graph of serialized model bytes (decoded message fields are nullable in the typings). */
function decodeGraph(bytes: Uint8Array): { model: onnx.ModelProto; graph: onnx.IGraphProto; node: onnx.INodeProto } {
  const model = onnxProto.onnx.ModelProto.decode(bytes);
  const graph = model.graph;
  assert.ok(graph, 'model has no graph');
  assert.equal(graph.node?.length, 1, 'graph must hold exactly one node');
  const node = graph.node[0];
  return { model, graph, node };
}

test('buildRnnModel: serialized ModelProto with W/R/B/P initializers and X/initial_h/initial_c inputs', () => {
  const rng = new Rng(0xb0);
  const spec = randomSpec(rng, 'LSTM', {
    direction: 'bidirectional',
    peepholes: true,
    initialH: true,
    initialC: true,
    extra: { clip: 2, activations: ['Sigmoid', 'Tanh', 'Tanh', 'Sigmoid', 'Tanh', 'Tanh'] },
  });
  const { model, graph, node } = decodeGraph(buildRnnModel(spec));
  assert.equal(Number(model.irVersion), ONNX_IR_VERSION);
  assert.deepEqual(
    model.opsetImport.map((o) => [o.domain, Number(o.version)]),
    [['', ONNX_OPSET]],
  );
  const initializers = graph.initializer ?? [];
  assert.deepEqual(
    initializers.map((t) => [t.name, (t.dims ?? []).map(Number)]),
    [
      ['W', [2, 4 * spec.H, spec.I]],
      ['R', [2, 4 * spec.H, spec.H]],
      ['B', [2, 8 * spec.H]],
      ['P', [2, 3 * spec.H]],
    ],
  );
  // rawData decodes as a (pooled) Buffer view in Node: copy it before reinterpreting.
  const rawW = Uint8Array.from(initializers[0]?.rawData ?? []);
  assert.deepEqual(new Float32Array(rawW.buffer), spec.W);
  assert.deepEqual(
    (graph.input ?? []).map((v) => v.name),
    ['X', 'initial_h', 'initial_c'],
  );
  assert.deepEqual(
    (graph.output ?? []).map((v) => v.name),
    ['Y', 'Y_h', 'Y_c'],
  );
  assert.equal(node.opType, 'LSTM');
  assert.deepEqual(node.input, ['X', 'W', 'R', 'B', '', 'initial_h', 'initial_c', 'P']);
  const attrs = new Map((node.attribute ?? []).map((a) => [a.name, a]));
  assert.equal(Number(attrs.get('hidden_size')?.i), spec.H);
  assert.equal(new TextDecoder().decode(attrs.get('direction')?.s ?? undefined), 'bidirectional');
  assert.equal(attrs.get('clip')?.f, 2);
  assert.equal(attrs.get('activations')?.strings?.length, 6);

  // Trailing omitted optional inputs are dropped, inner ones are empty names.
  const gru = decodeGraph(buildRnnModel(randomSpec(rng, 'GRU', { direction: 'forward', bias: false, initialH: true })));
  assert.deepEqual(gru.node.input, ['X', 'W', 'R', '', '', 'initial_h']);
  const rnn = decodeGraph(buildRnnModel(randomSpec(rng, 'RNN', { direction: 'reverse' })));
  assert.deepEqual(rnn.node.input, ['X', 'W', 'R', 'B']);
});

test('inconsistent specs and inputs are rejected', async () => {
  const rng = new Rng(0xbad);
  const spec = randomSpec(rng, 'GRU', { direction: 'forward', initialH: true });
  assert.throws(() => buildRnnModel({ ...spec, W: spec.W.subarray(1) }), /W has/);
  assert.throws(() => buildRnnModel({ ...spec, R: new Float32Array(1) }), /R has/);
  assert.throws(() => buildRnnModel({ ...spec, P: new Float32Array(3 * spec.H) }), /only valid for LSTM/);
  assert.throws(() => buildRnnModel({ ...spec, direction: 'bidirectional' }), /W has/);
  assert.throws(() => buildRnnModel({ ...spec, T: 0 }), /T must be a positive integer/);
  const runner = await createRunner(spec);
  try {
    const { x, h0 } = randomInputs(rng, spec);
    await assert.rejects(runner.run(x), /h0 must be given/);
    await assert.rejects(runner.run(x.subarray(1), h0), /x has/);
    await assert.rejects(runner.run(x, h0, h0), /c0 must be given/);
  } finally {
    await runner.release();
  }
  await assert.rejects(runner.run(new Float32Array(spec.T * spec.N * spec.I)), /after release/);
});

// ---------------------------------------------------------------------------------------------
// PyTorch layout -> ONNX layout

function randomTorchWeights(rng: Rng, op: OnnxCell, I: number, H: number, bias: boolean): TorchRnnWeights {
  const rows = onnxGateCount(op) * H;
  const w: TorchRnnWeights = { weight_ih: rng.floats(rows * I, 0.8), weight_hh: rng.floats(rows * H, 0.8) };
  if (bias) {
    w.bias_ih = rng.floats(rows, 0.5);
    w.bias_hh = rng.floats(rows, 0.5);
  }
  return w;
}

/** x [T, N, I] with the time axis reversed. */
function reverseTime(x: ArrayLike<number>, T: number, frame: number): Float64Array {
  const out = new Float64Array(T * frame);
  for (let t = 0; t < T; t++) {
    for (let k = 0; k < frame; k++) out[t * frame + k] = x[(T - 1 - t) * frame + k];
  }
  return out;
}

test('torchToOnnx: PyTorch-order reference == ONNX reference == onnxruntime on the converted weights', async () => {
  const rng = new Rng(0x7079);
  for (const op of ['LSTM', 'GRU', 'RNN'] as const) {
    for (const bias of [true, false]) {
      for (const initial of [false, true]) {
        const T = rng.int(1, 5);
        const N = rng.int(1, 3);
        const I = rng.int(1, 5);
        const H = rng.int(1, 6);
        const dims = { T, N, I, H };
        const fwd = randomTorchWeights(rng, op, I, H, bias);
        const bwd = randomTorchWeights(rng, op, I, H, bias);
        const a = torchToOnnx(op, H, fwd);
        const b = torchToOnnx(op, H, bwd);
        const concat = (p: Float32Array, q: Float32Array): Float32Array => {
          const out = new Float32Array(p.length + q.length);
          out.set(p);
          out.set(q, p.length);
          return out;
        };
        // A PyTorch GRU is the ONNX GRU with linear_before_reset = 1.
        const gruFlag: Partial<OnnxRnnSpec> = op === 'GRU' ? { linearBeforeReset: true } : {};
        const isLstm = op === 'LSTM';
        const spec: OnnxRnnSpec = {
          op,
          ...dims,
          direction: 'bidirectional',
          W: concat(a.W, b.W),
          R: concat(a.R, b.R),
          B: concat(a.B, b.B),
          withInitialH: initial,
          withInitialC: initial && isLstm,
          ...gruFlag,
        };
        const what = `${describe(spec)} (torch weights${bias ? '' : ', no torch bias'})`;
        const { x, h0, c0 } = randomInputs(rng, spec);
        const frame = N * H;

        // Forward direction: PyTorch semantics on PyTorch weights; reverse direction: PyTorch runs
        // the time-reversed sequence and reports outputs at the original positions.
        const tf = torchReference(op, dims, fwd, x, h0?.subarray(0, frame), c0?.subarray(0, frame));
        const tbRev = torchReference(op, dims, bwd, reverseTime(x, T, N * I), h0?.subarray(frame), c0?.subarray(frame));
        const tb = { ...tbRev, output: reverseTime(tbRev.output, T, frame) };
        const torchY = new Float64Array(T * 2 * frame);
        for (let t = 0; t < T; t++) {
          torchY.set(tf.output.subarray(t * frame, (t + 1) * frame), (2 * t) * frame);
          torchY.set(tb.output.subarray(t * frame, (t + 1) * frame), (2 * t + 1) * frame);
        }
        const torchH = new Float64Array([...tf.h_n, ...tb.h_n]);
        const torchC = isLstm && tf.c_n && tb.c_n ? new Float64Array([...tf.c_n, ...tb.c_n]) : undefined;

        const ref = onnxReference(spec, x, h0, c0);
        assertClose(`${what}: ONNX reference Y vs PyTorch reference`, ref.Y, torchY, [T, 2, N, H], 1e-12);
        assertClose(`${what}: ONNX reference Y_h vs PyTorch reference`, ref.Y_h, torchH, [2, N, H], 1e-12);
        if (isLstm) assertClose(`${what}: ONNX reference Y_c vs PyTorch`, ref.Y_c, torchC, [2, N, H], 1e-12);

        const runner = await createRunner(spec);
        try {
          const got = await runner.run(x, h0, c0);
          assertClose(`${what}: onnxruntime Y vs PyTorch reference`, got.Y, torchY, [T, 2, N, H]);
          assertClose(`${what}: onnxruntime Y_h vs PyTorch reference`, got.Y_h, torchH, [2, N, H]);
          if (isLstm) assertClose(`${what}: onnxruntime Y_c vs PyTorch reference`, got.Y_c, torchC, [2, N, H]);
        } finally {
          await runner.release();
        }
      }
    }
  }
});

test('torchToOnnx: gate blocks are permuted as documented and onnxToTorch inverts it', () => {
  // Tag every row with (gate, unit) so the permutation can be read back exactly.
  const H = 3;
  const I = 2;
  const expected: Record<OnnxCell, readonly number[]> = {
    LSTM: [0, 3, 1, 2], // ONNX i,o,f,c from PyTorch i,f,g,o
    GRU: [1, 0, 2], // ONNX z,r,h from PyTorch r,z,n
    RNN: [0],
  };
  for (const op of ['LSTM', 'GRU', 'RNN'] as const) {
    const G = onnxGateCount(op);
    const rowTag = (g: number, j: number): number => 100 * g + j;
    // [G*H, cols], every element of row gate*H + j set to sign * rowTag(gate, j)
    const tagged = (cols: number, sign = 1): Float32Array =>
      Float32Array.from({ length: G * H * cols }, (_, k) => {
        const row = Math.floor(k / cols);
        return sign * rowTag(Math.floor(row / H), row % H);
      });
    const torch: Required<TorchRnnWeights> = {
      weight_ih: tagged(I),
      weight_hh: tagged(H),
      bias_ih: tagged(1),
      bias_hh: tagged(1, -1),
    };
    const converted = torchToOnnx(op, H, torch);
    expected[op].forEach((from, to) => {
      for (let j = 0; j < H; j++) {
        assert.equal(converted.W[(to * H + j) * I], rowTag(from, j), `${op} W gate ${to} unit ${j}`);
        assert.equal(converted.R[(to * H + j) * H], rowTag(from, j), `${op} R gate ${to} unit ${j}`);
        assert.equal(converted.B[to * H + j], rowTag(from, j), `${op} Wb gate ${to} unit ${j}`);
        assert.equal(converted.B[G * H + to * H + j], -rowTag(from, j), `${op} Rb gate ${to} unit ${j}`);
      }
    });
    assert.deepEqual(onnxToTorch(op, H, converted), torch, `${op}: onnxToTorch(torchToOnnx(w)) != w`);

    // Missing PyTorch biases become zeros.
    const noBias = torchToOnnx(op, H, { weight_ih: torch.weight_ih, weight_hh: torch.weight_hh });
    assert.deepEqual(noBias.B, new Float32Array(2 * G * H));
    assert.throws(() => torchToOnnx(op, H, { ...torch, weight_hh: torch.weight_hh.subarray(1) }), /weight_hh has/);
  }
});
