/**
 * lib/io/onnx.ts against onnxruntime-node and PyTorch:
 *  - export: rnnkit models of every cell family and every variant ONNX expresses (peepholes, CIFG,
 *    clip, activations, GRU both forms, goBackwards, Bidirectional with each merge mode, stacked
 *    bidirectional, Embedding → LSTM → TimeDistributed(Dense softmax), RepeatVector, Dropout,
 *    Activation), with and without sequence_lens and initial states, run in onnxruntime: outputs and
 *    final states equal rnnkit's (|got − want| ≤ 1e-5·max(1, |want|)); the exported file re-imported
 *    with importOnnx predicts the same;
 *  - refused variants (NIG, NFG, NOG, FGR, projSize, cellBlockSize, cellClip, Masking) throw
 *    UnsupportedFeatureError naming the feature;
 *  - import: the torch.onnx.export fixtures of test/fixtures/gen_torch_onnx.py reproduce PyTorch's
 *    recorded outputs and onnxruntime's outputs on the same file;
 *  - malformed files give an OnnxFormatError with a clear message, each case in a child process.
 * The largest difference of each case is printed.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';

import {
  Activation, Bidirectional, Dense, Dropout, Embedding, GRU, LSTM, RepeatVector, Sequential, SimpleRNN, Tensor, TimeDistributed, Masking,
  describeOnnx, exportOnnx, importOnnx, importOnnxLayer, loadOnnx, saveOnnx, OnnxFormatError,
  type ModelLayer, type RecurrentBase,
} from '../lib/index.js';
import { UnsupportedFeatureError } from '../lib/io/layouts.js';
import { assertClose, rng, uniform32 } from './helpers/compare.js';
import { assertChildOk, repoRoot, reportRefusal, runNodeChild } from './helpers/child.js';

const TOL = { rtol: 1e-5, floor: 1 };
const FIXTURES = path.join(repoRoot, 'test', 'fixtures');
const B = 3, T = 5, I = 4;

// ---------------------------------------------------------------------------------------------
// Malformed files: run in a child process (this file re-run with --malformed <case>)

function baseModelBytes(): Uint8Array {
  const m = new Sequential([new LSTM({ units: 3, returnSequences: true, peepholes: true }), new Dense({ units: 2 })], { seed: 7 });
  m.build([null, I]);
  return exportOnnx(m);
}

const MALFORMED: Record<string, { make: () => Uint8Array; expect: RegExp }> = {
  'truncated protobuf': { make: () => baseModelBytes().subarray(0, 700), expect: /bad\.onnx: not an ONNX model: the protobuf does not decode|bad\.onnx: .*(raw_data|missing)/ },
  'random bytes': {
    make: () => { const r = rng(99); return Uint8Array.from({ length: 3000 }, () => Math.floor(r.next() * 256)); },
    expect: /bad\.onnx: not an ONNX model/,
  },
  'empty file': { make: () => new Uint8Array(0), expect: /bad\.onnx: the file is empty/ },
  'missing initializer': {
    make: () => edit((g) => { g.initializer = g.initializer.filter((t) => !t.name!.startsWith('R_')); }),
    expect: /bad\.onnx: node "lstm_\d+" \(LSTM\): input "R_\d+" is neither a graph input, an initializer nor the output of an earlier node/,
  },
  'wrong initializer shape': {
    make: () => edit((g) => {
      const r = g.initializer.find((t) => t.name!.startsWith('R_'))!;
      r.dims = [1, 6, 6];  // 36 elements, like [1, 12, 3]
    }),
    expect: /bad\.onnx: node "lstm_\d+" \(LSTM\): R has shape \[1, 6, 6\], expected \[1, 12, 3\]/,
  },
  'unknown operator': {
    make: () => edit((g) => { g.node.find((n) => n.opType === 'MatMul')!.opType = 'FancyMatMul'; }),
    expect: /bad\.onnx: node "matmul_\d+" \(FancyMatMul\): operator FancyMatMul is not supported/,
  },
  'raw_data length mismatch': {
    make: () => edit((g) => { const w = g.initializer.find((t) => t.name!.startsWith('W_'))!; w.rawData = w.rawData!.subarray(0, 20); }),
    expect: /bad\.onnx: initializer "W_\d+": raw_data has 20 bytes, expected 48 × 4 = 192 for FLOAT \[1, 12, 4\]/,
  },
  'dims of terabytes': {
    make: () => edit((g) => { g.initializer.find((t) => t.name!.startsWith('W_'))!.dims = [1_000_000, 1_000_000, 1_000_000]; }),
    expect: /bad\.onnx: initializer "W_\d+": declares \[1000000, 1000000, 1000000\] = more than \d+ elements; refused/,
  },
  'negative dim': {
    make: () => edit((g) => { g.initializer.find((t) => t.name!.startsWith('W_'))!.dims = [1, -12, 4]; }),
    expect: /bad\.onnx: initializer "W_\d+": dims\[1\] is negative/,
  },
};

function edit(change: (g: onnxProto.onnx.GraphProto) => void): Uint8Array {
  const m = onnxProto.onnx.ModelProto.decode(baseModelBytes());
  change(m.graph as onnxProto.onnx.GraphProto);
  return onnxProto.onnx.ModelProto.encode(m).finish();
}

async function malformedChild(name: string): Promise<void> {
  const c = MALFORMED[name];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-onnx-'));
  const file = path.join(dir, 'bad.onnx');
  fs.writeFileSync(file, c.make());
  try {
    await reportRefusal(() => loadOnnx(file), (err) =>
      !(err instanceof OnnxFormatError) ? `${err.name}: ${err.message}`
        : !c.expect.test(err.message) ? `message ${JSON.stringify(err.message)} does not match ${c.expect}` : undefined);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const childArg = process.argv.indexOf('--malformed');
if (childArg >= 0) {
  await malformedChild(process.argv[childArg + 1]);
} else {
  registerTests();
}

// ---------------------------------------------------------------------------------------------

function input(seed: number, b = B, t = T, f = I): Float32Array {
  return uniform32(rng(seed), b * t * f);
}

async function session(bytes: Uint8Array): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], intraOpNumThreads: 1, graphOptimizationLevel: 'all' });
}

function data(v: ort.Tensor | undefined, what: string): Float32Array {
  assert.ok(v && v.data instanceof Float32Array, `${what}: missing or not float32`);
  return v.data as Float32Array;
}

/** The rnnkit states of a layer as ONNX's [numLayers·dirs, batch, H] stacks (h, then c). */
function stackedStates(layer: RecurrentBase, states: Tensor[]): Float32Array[] {
  if (layer instanceof Bidirectional) {
    const per = states.length / 2;  // [h_fw, (c_fw,) h_bw, (c_bw)]
    return Array.from({ length: per }, (_, k) => {
      const fw = states[k].data, bw = states[per + k].data;
      const out = new Float32Array(fw.length + bw.length);
      out.set(fw, 0);
      out.set(bw, fw.length);
      return out;
    });
  }
  return states.map((s) => Float32Array.from(s.data));
}

function stateTensors(layer: RecurrentBase, stacks: Float32Array[], rows: number, H: number): Tensor[] {
  if (layer instanceof Bidirectional) {
    const half = (a: Float32Array, d: number) => Tensor.from(a.slice(d * B * H, (d + 1) * B * H), [B, H]);
    return [...stacks.map((s) => half(s, 0)), ...stacks.map((s) => half(s, 1))];
  }
  return rows === 1 ? stacks.map((s) => Tensor.from(s, [B, H])) : stacks.map((s) => Tensor.from(s, [rows, B, H]));
}

interface ModelCase {
  label: string;
  layers: () => ModelLayer[];
  lengths?: number[];
  ids?: number;
}

function registerTests(): void {
  const MODEL_CASES: ModelCase[] = [
    { label: 'LSTM', layers: () => [new LSTM({ units: 4, returnSequences: true })] },
    { label: 'LSTM peepholes (variant V)', layers: () => [new LSTM({ units: 4, returnSequences: true, variant: 'V' })] },
    { label: 'LSTM CIFG + clip 0.5, last output', layers: () => [new LSTM({ units: 4, variant: 'CIFG', clip: 0.5 })] },
    { label: 'LSTM NIAF / NOAF-style activations (hardSigmoid gates, linear g, softsign h)', layers: () => [new LSTM({ units: 3, returnSequences: true, recurrentActivation: 'hardSigmoid', candidateActivation: 'linear', outputActivation: 'softsign' })] },
    { label: 'LSTM variant NOAF', layers: () => [new LSTM({ units: 3, returnSequences: true, variant: 'NOAF' })] },
    { label: 'LSTM scaledTanh(0.8, 1.2) / leakyRelu(0.1)', layers: () => [new LSTM({ units: 3, returnSequences: true, candidateActivation: { name: 'scaledTanh', alpha: 0.8, beta: 1.2 }, outputActivation: { name: 'leakyRelu', alpha: 0.1 } })] },
    { label: 'LSTM goBackwards', layers: () => [new LSTM({ units: 3, returnSequences: true, goBackwards: true, peepholes: true })] },
    { label: 'GRU resetAfter (linear_before_reset 1)', layers: () => [new GRU({ units: 4, returnSequences: true })] },
    { label: 'GRU reset before (linear_before_reset 0), no bias', layers: () => [new GRU({ units: 4, returnSequences: true, resetAfter: false, useBias: false })] },
    { label: 'GRU clip 0.4, elu candidate, last output', layers: () => [new GRU({ units: 4, clip: 0.4, activation: 'elu' })] },
    { label: 'SimpleRNN tanh', layers: () => [new SimpleRNN({ units: 4, returnSequences: true })] },
    { label: 'SimpleRNN relu goBackwards last', layers: () => [new SimpleRNN({ units: 4, activation: 'relu', goBackwards: true })] },
    ...(['concat', 'sum', 'mul', 'ave'] as const).map((mergeMode) => ({
      label: `Bidirectional(LSTM) ${mergeMode}`, layers: () => [new Bidirectional(new LSTM({ units: 3, returnSequences: true, peepholes: true }), { mergeMode })],
    })),
    { label: 'Bidirectional(GRU) sum, last output', layers: () => [new Bidirectional(new GRU({ units: 3 }), { mergeMode: 'sum' })] },
    { label: 'LSTM numLayers 2 bidirectional', layers: () => [new LSTM({ units: 3, returnSequences: true, numLayers: 2, bidirectional: true })] },
    { label: 'GRU numLayers 3 bidirectional, last output → Dense', layers: () => [new GRU({ units: 3, numLayers: 3, bidirectional: true }), new Dense({ units: 2, activation: 'tanh' })] },
    { label: 'LSTM → Dropout → LSTM → Dense relu → Activation sigmoid', layers: () => [new LSTM({ units: 4, returnSequences: true }), new Dropout({ rate: 0.3 }), new LSTM({ units: 3 }), new Dense({ units: 3, activation: 'relu' }), new Activation({ activation: 'sigmoid' })] },
    { label: 'GRU last → RepeatVector 4 → LSTM → TimeDistributed(Dense)', layers: () => [new GRU({ units: 3 }), new RepeatVector({ n: 4 }), new LSTM({ units: 3, returnSequences: true }), new TimeDistributed(new Dense({ units: 2 }))] },
    { label: 'Embedding → LSTM → TimeDistributed(Dense softmax)', ids: 11, layers: () => [new Embedding({ inputDim: 11, outputDim: 4 }), new LSTM({ units: 5, returnSequences: true }), new TimeDistributed(new Dense({ units: 3, activation: 'softmax' }))] },
    // variable lengths (sequence_lens), post-padding
    { label: 'lengths: LSTM peepholes', lengths: [5, 2, 3], layers: () => [new LSTM({ units: 3, returnSequences: true, peepholes: true })] },
    { label: 'lengths: LSTM last output', lengths: [5, 1, 3], layers: () => [new LSTM({ units: 3 })] },
    { label: 'lengths: SimpleRNN goBackwards', lengths: [4, 2, 5], layers: () => [new SimpleRNN({ units: 3, returnSequences: true, goBackwards: true })] },
    { label: 'lengths: GRU goBackwards last output', lengths: [4, 2, 5], layers: () => [new GRU({ units: 3, goBackwards: true })] },
    { label: 'lengths: Bidirectional(LSTM) ave', lengths: [5, 2, 3], layers: () => [new Bidirectional(new LSTM({ units: 3, returnSequences: true }), { mergeMode: 'ave' })] },
    { label: 'lengths: Bidirectional(GRU) concat last output', lengths: [5, 2, 3], layers: () => [new Bidirectional(new GRU({ units: 3 }))] },
    { label: 'lengths: LSTM numLayers 2 bidirectional → Dense softmax', lengths: [5, 2, 3], layers: () => [new LSTM({ units: 3, returnSequences: true, numLayers: 2, bidirectional: true }), new Dense({ units: 2, activation: 'softmax' })] },
  ];

  describe('exportOnnx: rnnkit models run in onnxruntime-node', () => {
    for (const [k, c] of MODEL_CASES.entries()) {
      test(c.label, async () => {
        const model = new Sequential(c.layers(), { seed: 100 + k });
        model.build(c.ids ? [T] : [T, I]);
        let x: Tensor;
        let feed: ort.Tensor;
        if (c.ids) {
          const r = rng(500 + k);
          const ids = Array.from({ length: B * T }, () => Math.floor(r.next() * c.ids!));
          x = Tensor.from(ids, [B, T]);
          feed = new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [B, T]);
        } else {
          const xd = input(500 + k);
          x = Tensor.from(xd, [B, T, I]);
          feed = new ort.Tensor('float32', xd, [B, T, I]);
        }
        const want = await model.predict(x, c.lengths ? { lengths: c.lengths } : {});
        const bytes = exportOnnx(model, c.lengths ? { sequenceLens: true } : {});
        const s = await session(bytes);
        const feeds: Record<string, ort.Tensor> = { x: feed };
        if (c.lengths) feeds.sequence_lens = new ort.Tensor('int32', Int32Array.from(c.lengths), [B]);
        const out = await s.run(feeds);
        assert.deepEqual(out.y.dims, want.shape, 'output shape');
        const r1 = assertClose(data(out.y, 'y'), want.data, { ...TOL, label: `${c.label}: onnxruntime y`, shape: want.shape });
        // the file read back predicts the same
        const back = importOnnx(bytes);
        const again = await back.predict(x, c.lengths ? { lengths: c.lengths } : {});
        const r2 = assertClose(again.data, want.data, { ...TOL, label: `${c.label}: re-imported predict`, shape: want.shape });
        console.log(`${c.label}: largest |onnxruntime − rnnkit| ${r1.maxAbs.toExponential(2)}, |re-imported − rnnkit| ${r2.maxAbs.toExponential(2)}`);
        await s.release();
      });
    }
  });

  describe('exportOnnx: initial states and final states (a single recurrent layer)', () => {
    const H = 3;
    const cases: { label: string; layer: () => RecurrentBase; rows: number; lengths?: number[] }[] = [
      { label: 'LSTM peepholes', rows: 1, layer: () => new LSTM({ inputSize: I, units: H, returnSequences: true, returnState: true, peepholes: true, seed: 1 }) },
      { label: 'GRU numLayers 2 bidirectional, lengths', rows: 4, lengths: [5, 3, 1], layer: () => new GRU({ inputSize: I, units: H, returnSequences: true, returnState: true, numLayers: 2, bidirectional: true, seed: 2 }) },
      { label: 'Bidirectional(LSTM) sum, lengths', rows: 2, lengths: [2, 5, 4], layer: () => new Bidirectional(new LSTM({ inputSize: I, units: H, returnSequences: true, returnState: true, seed: 3 }), { mergeMode: 'sum' }) },
      { label: 'SimpleRNN goBackwards, last output, lengths', rows: 1, lengths: [2, 5, 4], layer: () => new SimpleRNN({ inputSize: I, units: H, returnState: true, goBackwards: true, seed: 4 }) },
      { label: 'LSTM numLayers 2 bidirectional, lengths', rows: 4, lengths: [5, 2, 4], layer: () => new LSTM({ inputSize: I, units: H, returnSequences: true, returnState: true, numLayers: 2, bidirectional: true, seed: 6 }) },
      { label: 'LSTM numLayers 2 CIFG', rows: 2, layer: () => new LSTM({ inputSize: I, units: H, returnSequences: true, returnState: true, numLayers: 2, variant: 'CIFG', seed: 5 }) },
    ];
    for (const [k, c] of cases.entries()) {
      test(c.label, async () => {
        const layer = c.layer();
        const isLstm = layer.className === 'LSTM' || (layer instanceof Bidirectional && layer.forwardLayer instanceof LSTM);
        const xd = input(900 + k);
        const h0 = uniform32(rng(910 + k), c.rows * B * H, -0.5, 0.5);
        const c0 = uniform32(rng(920 + k), c.rows * B * H, -0.5, 0.5);
        const stacks = isLstm ? [h0, c0] : [h0];
        const ours = layer.forward(Tensor.from(xd, [B, T, I]), { initialState: stateTensors(layer, stacks, c.rows, H), ...(c.lengths ? { lengths: c.lengths } : {}) });
        const bytes = exportOnnx(layer, { initialStates: true, ...(c.lengths ? { sequenceLens: true } : {}) });
        const s = await session(bytes);
        const feeds: Record<string, ort.Tensor> = {
          x: new ort.Tensor('float32', xd, [B, T, I]),
          initial_h: new ort.Tensor('float32', h0, [c.rows, B, H]),
        };
        if (isLstm) feeds.initial_c = new ort.Tensor('float32', c0, [c.rows, B, H]);
        if (c.lengths) feeds.sequence_lens = new ort.Tensor('int32', Int32Array.from(c.lengths), [B]);
        const out = await s.run(feeds);
        const ry = assertClose(data(out.y, 'y'), ours.output.data, { ...TOL, label: `${c.label}: y` });
        const want = stackedStates(layer, ours.states);
        const rh = assertClose(data(out.h_n, 'h_n'), want[0], { ...TOL, label: `${c.label}: h_n` });
        let rc = 0;
        if (isLstm) rc = assertClose(data(out.c_n, 'c_n'), want[1], { ...TOL, label: `${c.label}: c_n` }).maxAbs;
        console.log(`${c.label}: largest difference y ${ry.maxAbs.toExponential(2)}, h_n ${rh.maxAbs.toExponential(2)}${isLstm ? `, c_n ${rc.toExponential(2)}` : ''}`);
        // importOnnxLayer: the layer read back, fed the same states, computes onnxruntime's outputs
        const back = importOnnxLayer(bytes);
        assert.equal(back.returnState, true);
        const again = back.forward(Tensor.from(xd, [B, T, I]), { initialState: stateTensors(back, stacks, c.rows, H), ...(c.lengths ? { lengths: c.lengths } : {}) });
        const by = assertClose(again.output.data, data(out.y, 'y'), { ...TOL, label: `${c.label}: importOnnxLayer y` });
        const bs = stackedStates(back, again.states);
        const bh = assertClose(bs[0], data(out.h_n, 'h_n'), { ...TOL, label: `${c.label}: importOnnxLayer h_n` });
        let bc = 0;
        if (isLstm) bc = assertClose(bs[1], data(out.c_n, 'c_n'), { ...TOL, label: `${c.label}: importOnnxLayer c_n` }).maxAbs;
        // importOnnx: a Sequential of the same file = the graph with zero initial states
        const zero = new Float32Array(c.rows * B * H);
        const zfeeds: Record<string, ort.Tensor> = { ...feeds, initial_h: new ort.Tensor('float32', zero, [c.rows, B, H]) };
        if (isLstm) zfeeds.initial_c = new ort.Tensor('float32', zero, [c.rows, B, H]);
        const zout = await s.run(zfeeds);
        const seq = importOnnx(bytes);
        const pred = await seq.predict(Tensor.from(xd, [B, T, I]), c.lengths ? { lengths: c.lengths } : {});
        const rz = assertClose(pred.data, data(zout.y, 'y'), { ...TOL, label: `${c.label}: importOnnx zero states` });
        console.log(`${c.label}: importOnnxLayer vs onnxruntime: y ${by.maxAbs.toExponential(2)}, h_n ${bh.maxAbs.toExponential(2)}${isLstm ? `, c_n ${bc.toExponential(2)}` : ''}; importOnnx (zero states) y ${rz.maxAbs.toExponential(2)}`);
        await s.release();
      });
    }

    test('without initial states, a bare layer with returnState exports h_n/c_n of zero initial states', async () => {
      const layer = new LSTM({ inputSize: I, units: H, returnState: true, numLayers: 2, seed: 9 });
      const xd = input(990);
      const ours = layer.forward(Tensor.from(xd, [B, T, I]));
      const s = await session(exportOnnx(layer));
      assert.deepEqual(s.inputNames, ['x', 'initial_h', 'initial_c']);
      const zeros = new ort.Tensor('float32', new Float32Array(2 * B * H), [2, B, H]);
      const out = await s.run({ x: new ort.Tensor('float32', xd, [B, T, I]), initial_h: zeros, initial_c: zeros });
      const r = assertClose(data(out.y, 'y'), ours.output.data, { ...TOL, label: 'y' });
      assertClose(data(out.h_n, 'h_n'), ours.states[0].data, { ...TOL, label: 'h_n' });
      assertClose(data(out.c_n, 'c_n'), ours.states[1].data, { ...TOL, label: 'c_n' });
      console.log(`bare LSTM returnState: largest difference ${r.maxAbs.toExponential(2)}`);
      const plain = await session(exportOnnx(new LSTM({ inputSize: I, units: H, seed: 9 })));
      assert.deepEqual(plain.inputNames, ['x']);
      assert.deepEqual(plain.outputNames, ['y']);
    });
  });

  describe('importOnnxLayer: refuses graphs that are not one recurrent layer', () => {
    test('Embedding → LSTM → Dense', () => {
      const m = new Sequential([new Embedding({ inputDim: 7, outputDim: 3 }), new LSTM({ units: 4 }), new Dense({ units: 2 })], { seed: 3 });
      m.build([T]);
      assert.throws(() => importOnnxLayer(exportOnnx(m)), (e: Error) => e instanceof OnnxFormatError && /not one recurrent layer: it has emb → LSTM → dense/.test(e.message) && /importOnnx for a model/.test(e.message));
    });
  });

  describe('exportOnnx: refused variants and options', () => {
    const refused: [string, () => ModelLayer, RegExp][] = [
      ['NIG', () => new LSTM({ inputSize: I, units: 3, variant: 'NIG' }), /ONNX cannot express NIG/],
      ['NFG', () => new LSTM({ inputSize: I, units: 3, variant: 'NFG' }), /ONNX cannot express NFG/],
      ['NOG', () => new LSTM({ inputSize: I, units: 3, variant: 'NOG' }), /ONNX cannot express NOG/],
      ['FGR', () => new LSTM({ inputSize: I, units: 3, variant: 'FGR' }), /ONNX cannot express FGR/],
      ['projSize', () => new LSTM({ inputSize: I, units: 3, projSize: 2 }), /ONNX cannot express a projection \(projSize\)/],
      ['cellBlockSize', () => new LSTM({ inputSize: I, units: 4, cellBlockSize: 2 }), /ONNX cannot express cell blocks/],
      ['cellClip', () => new LSTM({ inputSize: I, units: 3, cellClip: 1 }), /ONNX cannot express cellClip/],
      ['Bidirectional(cellClip)', () => new Bidirectional(new LSTM({ inputSize: I, units: 3, cellClip: 1 })), /ONNX cannot express cellClip/],
    ];
    for (const [name, make, msg] of refused) {
      test(name, () => {
        const m = new Sequential([make(), new Dense({ units: 2 })], { seed: 1 });
        m.build([T, I]);
        assert.throws(() => exportOnnx(m), (e: Error) => e instanceof UnsupportedFeatureError && msg.test(e.message) && /layer 0/.test(e.message));
      });
    }
    test('Masking and Embedding maskZero', () => {
      const m = new Sequential([new Masking(), new LSTM({ units: 2 })], { seed: 1 });
      m.build([T, I]);
      assert.throws(() => exportOnnx(m), (e: Error) => e instanceof UnsupportedFeatureError && /ONNX cannot express Masking/.test(e.message));
      const e = new Sequential([new Embedding({ inputDim: 5, outputDim: 2, maskZero: true }), new LSTM({ units: 2 })], { seed: 1 });
      e.build([T]);
      assert.throws(() => exportOnnx(e), (err: Error) => err instanceof UnsupportedFeatureError && /maskZero/.test(err.message));
    });
    test('options are checked', () => {
      const m = new Sequential([new LSTM({ units: 2, returnSequences: true }), new LSTM({ units: 2 })], { seed: 1 });
      assert.throws(() => exportOnnx(m), /not built/);
      m.build([T, I]);
      assert.throws(() => exportOnnx(m, { opset: 17 }), /only 15/);
      assert.throws(() => exportOnnx(m, { bogus: 1 } as never), /bogus/);
      assert.throws(() => exportOnnx(m, { initialStates: true }), /exactly one recurrent layer/);
      assert.throws(() => exportOnnx({} as never), /expected a Sequential/);
    });
  });

  describe('saveOnnx / loadOnnx / describeOnnx', () => {
    test('a saved file loads and is described', async () => {
      const m = new Sequential([new Bidirectional(new GRU({ units: 3, returnSequences: true }), { mergeMode: 'mul' }), new Dense({ units: 2 })], { seed: 4, name: 'demo' });
      m.build([T, I]);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-onnx-'));
      try {
        const file = path.join(dir, 'm.onnx');
        await saveOnnx(m, file);
        assert.deepEqual(fs.readdirSync(dir), ['m.onnx']);
        const back = await loadOnnx(file);
        const x = Tensor.from(input(77), [B, T, I]);
        const r = assertClose((await back.predict(x)).data, (await m.predict(x)).data, { ...TOL, label: 'loadOnnx predict' });
        console.log(`saveOnnx → loadOnnx: largest difference ${r.maxAbs.toExponential(2)}`);
        const d = describeOnnx(fs.readFileSync(file));
        assert.equal(d.opset, 15);
        assert.equal(d.irVersion, 8);
        assert.equal(d.producer, 'rnnkit');
        assert.equal(d.graphName, 'demo');
        assert.deepEqual(d.inputs, [{ name: 'x', type: 'FLOAT', shape: ['batch', 'steps', I] }]);
        assert.equal(d.outputs[0].name, 'y');
        assert.equal(d.nodes.GRU, 1);
        assert.equal(d.nodes.ReduceProd, 1);
        assert.ok(d.initializers.some((t) => t.shape.join() === '2,9,4'), 'W [2, 9, 4]');
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('importOnnx: torch.onnx.export files (test/fixtures/gen_torch_onnx.py)', () => {
    interface Fixture {
      name: string;
      file: string;
      input: { shape: number[]; dtype: 'float32' | 'int64'; data: number[] };
      outputs: Record<string, { shape: number[]; data: number[] }>;
    }
    const fx = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'torch_onnx.json'), 'utf8')) as { cases: Fixture[] };
    assert.equal(fx.cases.length, 5);
    const layersOf: Record<string, string[]> = {
      lstm: ['Bidirectional', 'Bidirectional'], gru: ['GRU'], rnn: ['SimpleRNN'], embed: ['Embedding', 'LSTM', 'Dense'], last: ['GRU', 'Dense'],
    };
    /** [a, b, F] → [b, a, F] */
    const swap = (src: ArrayLike<number>, a: number, b: number, f: number): Float32Array => {
      const out = new Float32Array(a * b * f);
      for (let i = 0; i < a; i++) for (let j = 0; j < b; j++) for (let k = 0; k < f; k++) out[(j * a + i) * f + k] = src[(i * b + j) * f + k];
      return out;
    };
    for (const c of fx.cases) {
      test(`${c.name}: ${c.file}`, async () => {
        const bytes = new Uint8Array(fs.readFileSync(path.join(FIXTURES, c.file)));
        const model = importOnnx(bytes, { where: c.file });
        assert.deepEqual(model.layers.map((l) => l.className), layersOf[c.name]);
        const timeMajor = c.name === 'gru';  // nn.GRU(batch_first=False): x [steps, batch, features]
        const [d0, d1, d2] = c.input.shape;
        let x: Tensor;
        let feed: ort.Tensor;
        if (c.input.dtype === 'int64') {
          x = Tensor.from(c.input.data, c.input.shape);
          feed = new ort.Tensor('int64', BigInt64Array.from(c.input.data.map(BigInt)), c.input.shape);
        } else {
          x = timeMajor ? Tensor.from(swap(c.input.data, d0, d1, d2), [d1, d0, d2]) : Tensor.from(Float32Array.from(c.input.data), c.input.shape);
          feed = new ort.Tensor('float32', Float32Array.from(c.input.data), c.input.shape);
        }
        const got = await model.predict(x);
        const y = c.outputs.y;
        const want = timeMajor ? swap(y.data, y.shape[0], y.shape[1], y.shape[2]) : Float32Array.from(y.data);
        const rt = assertClose(got.data, want, { ...TOL, label: `${c.name}: rnnkit vs PyTorch` });
        const s = await session(bytes);
        const out = await s.run({ x: feed });
        const ortY = data(out.y, 'y');
        const ortBatchFirst = timeMajor ? swap(ortY, y.shape[0], y.shape[1], y.shape[2]) : ortY;
        const ro = assertClose(got.data, ortBatchFirst, { ...TOL, label: `${c.name}: rnnkit vs onnxruntime` });
        console.log(`${c.file}: largest |rnnkit − PyTorch| ${rt.maxAbs.toExponential(2)}, |rnnkit − onnxruntime| ${ro.maxAbs.toExponential(2)}`);
        await s.release();
      });
    }
  });

  describe('importOnnx: malformed files give clear errors (each in a child process)', () => {
    const self = fileURLToPath(import.meta.url);
    for (const name of Object.keys(MALFORMED)) {
      test(name, () => {
        const line = assertChildOk(runNodeChild(self, ['--malformed', name], { timeout: 60_000 }), name);
        console.log(`${name}: ${line}`);
      });
    }
    test('bytes that are not a Uint8Array, and unknown options', () => {
      assert.throws(() => importOnnx('x' as never), TypeError);
      assert.throws(() => importOnnx(new Uint8Array(1), { bogus: 1 } as never), /bogus/);
    });
  });
}
