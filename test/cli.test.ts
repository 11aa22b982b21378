/**
 * The command line (bin/rnnkit.mjs → lib/cli.ts), run as a child process like a user runs it:
 * `inspect` and `convert` on a model of every format, every pair of writable formats converted and
 * the converted model's predictions checked against the original's (1e-5), and the exit codes:
 * 0 done, 1 unreadable input, 2 usage error, 3 refused conversion (the feature named).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { Sequential, Embedding, LSTM, GRU, Dense, TimeDistributed, Bidirectional, Tensor } from '../lib/index.js';
import { readModel, type ModelFormat } from '../lib/io/formats.js';
import { compare, rng, uniform32 } from './helpers/compare.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(root, 'bin', 'rnnkit.mjs');
const FIXTURES = path.join(root, 'test', 'fixtures');

function rnnkit(...args: string[]): { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

function expectCode(r: ReturnType<typeof rnnkit>, code: number, label: string): void {
  assert.equal(r.signal, null, `${label}: killed by ${r.signal}\n${r.stderr}`);
  assert.equal(r.code, code, `${label}: exit ${r.code}, expected ${code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-cli-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

/** Seeded weights U(±0.5) in every parameter (so conversions move real numbers). */
function randomize(model: Sequential, seed: number): void {
  const r = rng(seed);
  for (const t of Object.values(model.namedParameters())) (t.data as Float32Array).set(uniform32(r, t.size, -0.5, 0.5));
  model.markWeightsChanged();
}

const B = 3, T = 6, VOCAB = 11;
function ids(seed: number): Tensor {
  const r = rng(seed);
  return Tensor.from(Float32Array.from({ length: B * T }, () => Math.min(VOCAB - 1, Math.floor(r.uniform(0, VOCAB)))), [B, T]);
}
function features(seed: number, f: number): Tensor {
  return Tensor.from(uniform32(rng(seed), B * T * f), [B, T, f]);
}

async function assertSamePredictions(a: Sequential, b: Sequential, x: Tensor, label: string): Promise<number> {
  const ya = await a.predict(x), yb = await b.predict(x);
  assert.deepEqual([...yb.shape], [...ya.shape], `${label}: output shape`);
  const rep = compare(yb.data as ArrayLike<number>, ya.data as ArrayLike<number>, { rtol: 1e-5, floor: 1 });
  assert.ok(rep.worstRatio <= 1, `${label}: outputs differ by ${rep.maxAbs} (> 1e-5)`);
  return rep.maxAbs;
}

// The model every format can express: Embedding → LSTM (sequences) → TimeDistributed(Dense softmax).
const lmModel = (): Sequential => {
  const m = new Sequential([new Embedding({ inputDim: VOCAB, outputDim: 5 }), new LSTM({ units: 6, returnSequences: true }), new TimeDistributed(new Dense({ units: 4, activation: 'softmax' }))], { seed: 3, name: 'lm' });
  m.build([T]);
  randomize(m, 30);
  return m;
};

const EXT: Record<ModelFormat, string> = { rnnkit: '', tfjs: '', keras: '.keras', 'keras-h5': '.h5', onnx: '.onnx', torch: '.safetensors' };
const WRITABLE: ModelFormat[] = ['rnnkit', 'tfjs', 'keras', 'keras-h5', 'onnx', 'torch'];

test('convert: every pair of formats keeps the predictions (Embedding → LSTM → TimeDistributed(Dense))', async () => {
  const model = lmModel();
  const x = ids(31);
  const src = path.join(tmp, 'lm-src');
  await model.save(src);
  // rnnkit → every format, then every format → every other format.
  const made: Partial<Record<ModelFormat, string>> = { rnnkit: src };
  for (const to of WRITABLE.filter((f) => f !== 'rnnkit')) {
    const out = path.join(tmp, `lm-from-rnnkit-${to}${EXT[to]}`);
    expectCode(rnnkit('convert', src, out, '--to', to), 0, `convert rnnkit → ${to}`);
    made[to] = out;
  }
  let worst = 0;
  for (const from of WRITABLE) {
    for (const to of WRITABLE) {
      if (from === to) continue;
      const out = path.join(tmp, `lm-${from}-to-${to}${EXT[to]}`);
      const r = rnnkit('convert', made[from]!, out, '--to', to);
      expectCode(r, 0, `convert ${from} → ${to}`);
      assert.match(r.stdout, new RegExp(`\\[${from}\\] -> .*\\[${to}\\]`));
      const { format, model: back } = await readModel(out);
      assert.equal(format, to, `${out}: detected format`);
      worst = Math.max(worst, await assertSamePredictions(model, back, x, `${from} → ${to}`));
    }
  }
  console.log(`${WRITABLE.length * (WRITABLE.length - 1)} conversions: largest prediction difference ${worst.toExponential(3)}`);
});

test('inspect: format, layers, output shapes, parameter counts and options of each format; --json', async () => {
  const model = lmModel();
  const src = path.join(tmp, 'inspect-src');
  await model.save(src);
  const total = Object.values(model.namedParameters()).reduce((a, t) => a + t.size, 0);
  for (const to of WRITABLE) {
    const p = to === 'rnnkit' ? src : path.join(tmp, `inspect${EXT[to]}`) + (to === 'tfjs' ? '-tfjs' : '');
    if (to !== 'rnnkit') expectCode(rnnkit('convert', src, p, '--to', to), 0, `convert → ${to}`);
    const r = rnnkit('inspect', p);
    expectCode(r, 0, `inspect ${to}`);
    assert.match(r.stdout, new RegExp(`\\[${to}\\]`), `inspect ${to}: names the format`);
    assert.match(r.stdout, /Embedding/);
    assert.match(r.stdout, /LSTM/);
    assert.match(r.stdout, new RegExp(`${total.toLocaleString('en-US')} parameters`), `inspect ${to}: total parameters`);
    const j = rnnkit('inspect', p, '--json');
    expectCode(j, 0, `inspect --json ${to}`);
    const report = JSON.parse(j.stdout) as { format: string; totalParameters: number; layers: { className: string; parameters: number; outputShape: unknown }[] };
    assert.equal(report.format, to);
    assert.equal(report.totalParameters, total);
    // A Dense over [batch, steps, features] is the same map as TimeDistributed(Dense) (ONNX has one MatMul for both).
    assert.deepEqual(report.layers.map((l) => l.className).slice(0, 2), ['Embedding', 'LSTM']);
    assert.ok(['TimeDistributed', 'Dense'].includes(report.layers[2].className), `${to}: last layer ${report.layers[2].className}`);
    // Steps are fixed where the format records them, else dynamic (null).
    const [steps, width] = report.layers[1].outputShape as (number | null)[];
    assert.ok(steps === T || steps === null, `${to}: LSTM output steps ${steps}`);
    assert.equal(width, 6);
    assert.equal(report.layers[1].parameters, 4 * 6 * (5 + 6) + 2 * 4 * 6);
  }
});

test('inspect and convert the committed fixtures of every format', async (t) => {
  const files = fs.readdirSync(FIXTURES).filter((f) => /\.(onnx|keras|h5)$/.test(f) || /^torch_interop_rnnkit_(sequential|model).*\.safetensors$/.test(f));
  assert.ok(files.some((f) => f.endsWith('.onnx')) && files.some((f) => f.endsWith('.keras')) && files.some((f) => f.endsWith('.h5')), `fixtures of every format: ${files.join(', ')}`);
  for (const f of files) {
    await t.test(f, async () => {
      const p = path.join(FIXTURES, f);
      if (/_bad_/.test(f)) {
        // A malformed fixture: exit 1 with a message naming the file.
        const bad = rnnkit('inspect', p);
        expectCode(bad, 1, `inspect ${f}`);
        assert.ok(bad.stderr.includes(f), `inspect ${f}: the message names the file: ${bad.stderr}`);
        expectCode(rnnkit('convert', p, path.join(tmp, `bad-${f}.onnx`)), 1, `convert ${f}`);
        return;
      }
      expectCode(rnnkit('inspect', p), 0, `inspect ${f}`);
      const out = path.join(tmp, `fixture-${f}.onnx`);
      const r = rnnkit('convert', p, out);
      // A fixture rnnkit can read converts to ONNX unless ONNX cannot express it (exit 3, named).
      assert.ok(r.code === 0 || r.code === 3, `convert ${f}: exit ${r.code}\n${r.stderr}`);
      if (r.code === 3) assert.match(r.stderr, /cannot express/);
    });
  }
});

test('a PyTorch state_dict rnnkit did not write: --torch-layers names its layers', async () => {
  const fixture = fs.readdirSync(FIXTURES).find((f) => /^torch_interop_(?!rnnkit).*(model|emb).*\.safetensors$/.test(f));
  assert.ok(fixture, 'a whole-model PyTorch fixture (Embedding → LSTM → Linear)');
  const p = path.join(FIXTURES, fixture);
  const without = rnnkit('inspect', p);
  if (without.code !== 0) {
    expectCode(without, 1, 'inspect without --torch-layers');
    assert.match(without.stderr, /torch-layers|layers/);
  }
  const good = rnnkit('inspect', p, '--torch-layers', 'emb.:Embedding,lstm.:LSTM,fc.:Linear', '--json');
  expectCode(good, 0, 'inspect with --torch-layers');
  assert.deepEqual((JSON.parse(good.stdout) as { layers: { className: string }[] }).layers.map((l) => l.className), ['Embedding', 'LSTM', 'Dense']);
  const out = path.join(tmp, 'torch-model.keras');
  expectCode(rnnkit('convert', p, out, '--torch-layers', 'emb.:Embedding,lstm.:LSTM,fc.:Linear'), 0, 'convert with --torch-layers');
  // A single module needs no description: its keys and shapes say what it is.
  const single = rnnkit('inspect', path.join(FIXTURES, 'torch_interop_lstm_bi.safetensors'), '--json');
  expectCode(single, 0, 'inspect a bare nn.LSTM state dict');
  const rep = JSON.parse(single.stdout) as { layers: { className: string; config: { numLayers?: number; bidirectional?: boolean } }[] };
  assert.equal(rep.layers[0].className, 'LSTM');
  assert.equal(rep.layers[0].config.bidirectional, true);
  const bad = rnnkit('inspect', p, '--torch-layers', 'emb.:Conv2d');
  expectCode(bad, 1, 'inspect with an unknown kind');
  assert.match(bad.stderr, /Conv2d/);
});

test('exit codes: missing or malformed input 1, usage 2, refused conversion 3, existing output without --force 2', async () => {
  expectCode(rnnkit('inspect', path.join(tmp, 'does-not-exist.onnx')), 1, 'missing file');
  const junk = path.join(tmp, 'junk.onnx');
  fs.writeFileSync(junk, Buffer.from('this is not a protobuf at all \x00\xff\xfe'));
  const j = rnnkit('inspect', junk);
  expectCode(j, 1, 'malformed ONNX');
  assert.match(j.stderr, /junk\.onnx/);
  const trunc = path.join(tmp, 'trunc.keras');
  fs.writeFileSync(trunc, Buffer.from([0x50, 0x4b, 0x03, 0x04, 1, 2, 3]));
  expectCode(rnnkit('inspect', trunc), 1, 'truncated .keras');

  expectCode(rnnkit(), 2, 'no command');
  expectCode(rnnkit('frobnicate'), 2, 'unknown command');
  expectCode(rnnkit('inspect'), 2, 'missing argument');
  expectCode(rnnkit('convert', 'a', 'b', '--to', 'pickle'), 2, 'unknown --to');
  const help = rnnkit('--help');
  expectCode(help, 0, '--help');
  assert.match(help.stdout, /inspect/);
  assert.match(help.stdout, /convert/);
  assert.match(help.stdout, /Exit codes/);
  expectCode(rnnkit('convert', '--help'), 0, 'convert --help');

  // A peephole LSTM: ONNX expresses it, Keras/tfjs and PyTorch do not (exit 3, the feature named).
  const peep = new Sequential([new LSTM({ units: 4, peepholes: true, inputSize: 3 }), new Dense({ units: 2 })], { seed: 5 });
  peep.build([T, 3]);
  randomize(peep, 50);
  const src = path.join(tmp, 'peep');
  await peep.save(src);
  for (const [to, ext] of [['tfjs', ''], ['keras', '.keras'], ['keras-h5', '.h5'], ['torch', '.safetensors']] as const) {
    const out = path.join(tmp, `peep-${to}${ext}`);
    const r = rnnkit('convert', src, out, '--to', to);
    expectCode(r, 3, `peepholes → ${to}`);
    assert.match(r.stderr, /peepholes/, `${to}: names the feature`);
    assert.equal(fs.existsSync(out), false, `${to}: nothing written`);
  }
  const onnxOut = path.join(tmp, 'peep.onnx');
  expectCode(rnnkit('convert', src, onnxOut), 0, 'peepholes → onnx');
  const { model: back } = await readModel(onnxOut);
  await assertSamePredictions(peep, back, features(51, 3), 'peepholes via ONNX');
  // A projected LSTM: ONNX cannot express it.
  const proj = new Sequential([new LSTM({ units: 4, projSize: 2, inputSize: 3 })], { seed: 6 });
  proj.build([T, 3]);
  await proj.save(path.join(tmp, 'proj'));
  const rp = rnnkit('convert', path.join(tmp, 'proj'), path.join(tmp, 'proj.onnx'));
  expectCode(rp, 3, 'projection → onnx');
  assert.match(rp.stderr, /projection/);
  // GRU reset-after bidirectional: tfjs has no reset-after GRU; Keras 3 has.
  const gru = new Sequential([new Bidirectional(new GRU({ units: 4, inputSize: 3, returnSequences: false })), new Dense({ units: 2 })], { seed: 7 });
  gru.build([T, 3]);
  randomize(gru, 70);
  await gru.save(path.join(tmp, 'gru'));
  const rg = rnnkit('convert', path.join(tmp, 'gru'), path.join(tmp, 'gru-tfjs'), '--to', 'tfjs');
  expectCode(rg, 3, 'reset-after GRU → tfjs');
  assert.match(rg.stderr, /reset/i);
  expectCode(rnnkit('convert', path.join(tmp, 'gru'), path.join(tmp, 'gru.keras')), 0, 'reset-after GRU → keras');
  await assertSamePredictions(gru, (await readModel(path.join(tmp, 'gru.keras'))).model, features(71, 3), 'GRU via .keras');

  // Existing output: refused without --force, replaced with it.
  const r1 = rnnkit('convert', path.join(tmp, 'gru'), path.join(tmp, 'gru.keras'));
  expectCode(r1, 2, 'existing output');
  assert.match(r1.stderr, /--force/);
  expectCode(rnnkit('convert', path.join(tmp, 'gru'), path.join(tmp, 'gru.keras'), '--force'), 0, 'existing output with --force');
  expectCode(rnnkit('convert', path.join(tmp, 'gru'), path.join(tmp, 'gru.pt')), 2, 'an output extension that names no format');
});

test('a reader that closes the pipe early (rnnkit --help | head -1) ends the command quietly, exit 0', () => {
  // The shell's `head` closes its end after one line; the command's next write then fails with EPIPE.
  const r = spawnSync('/bin/sh', ['-c', `"${process.execPath}" "${BIN}" --help | head -c 1 >/dev/null; sleep 0.2; "${process.execPath}" "${BIN}" --help | (exec 0<&-; sleep 0.3); echo "status $?"`], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /EPIPE|Unhandled/, r.stderr);
});
