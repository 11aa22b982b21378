/**
 * Sequential.save / loadModel / Sequential.loadWeights:
 *  1. save, then load in a fresh process: bit-identical predictions, and continuing fit there gives
 *     the same loss history and final weights as continuing fit on the original model.
 *  2. a process SIGKILLed during the save of a large model leaves the previous save loadable
 *     with its predictions (or, only when killed between the last two renames, the new model).
 *  3. truncated / oversized-header / shape-mismatched model.safetensors: refused by loadModel and
 *     loadWeights naming the file (and the tensor), the in-memory model unchanged.
 *  4. model.json with an unknown format version is refused naming the file.
 * Children: test/helpers/model-save-child.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { Adam, Dense, Embedding, LSTM, Sequential, Tensor, loadModel } from '../lib/index.js';
import { encodeSafetensors, decodeSafetensors } from '../lib/io/safetensors.js';
import { BIG_X, FIT_CONTINUE, bigModel, bitsHex, ids, weightsChecksum } from './helpers/model-save-child.js';

const CHILD = path.join('test', 'helpers', 'model-save-child.ts');

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-persist-'));
}

function runChild(args: string[]): { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CHILD, ...args], { encoding: 'utf8', cwd: process.cwd(), timeout: 120_000 });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

function smallModel(units = 5): Sequential {
  const m = new Sequential([new Embedding({ inputDim: 7, outputDim: 4 }), new LSTM({ units, returnSequences: true }), new Dense({ units: 7 })], { seed: 1 });
  m.compile({ optimizer: new Adam({ learningRate: 0.01 }), loss: { name: 'sparseCategoricalCrossentropy', fromLogits: true }, metrics: ['accuracy'] });
  return m;
}

const X = ids(8, 5, 7, 0);
const Y = ids(8, 5, 7, 2);

async function trainedSmall(units = 5): Promise<Sequential> {
  const m = smallModel(units);
  await m.fit(X, Y, { epochs: 2, batchSize: 4, seed: 3, verbose: 0 });
  return m;
}

function snapshot(m: Sequential): Record<string, string> {
  return Object.fromEntries(Object.entries(m.namedParameters()).map(([k, t]) => [k, bitsHex(t)]));
}

/** saveId in a safetensors file's metadata (parsed by hand, no checks). */
function fileSaveId(file: string): string | undefined {
  try {
    const b = fs.readFileSync(file);
    const n = Number(b.readBigUInt64LE(0));
    return JSON.parse(b.subarray(8, 8 + n).toString('utf8')).__metadata__?.['rnnkit.saveId'];
  } catch {
    return undefined;
  }
}

test('save → load in a fresh process: bit-identical predictions and identical continued training', async () => {
  const dir = tmpDir();
  try {
    const model = await trainedSmall();
    const pred = bitsHex(await model.predict(X));
    await model.save(dir);
    for (const f of ['model.json', 'model.safetensors', 'optimizer.safetensors']) assert.ok(fs.existsSync(path.join(dir, f)), `${f} written`);

    const data = JSON.stringify({ x: Array.from(X.data as Float32Array), y: Array.from(Y.data as Float32Array), shape: [...X.shape] });
    const r = runChild([dir, 'continue', data]);
    assert.equal(r.status, 0, `child failed: ${r.stderr}`);
    const child = JSON.parse(r.stdout.trim().split('\n').pop()!) as { pred: string; loss: number[]; checksum: string; after: string };

    assert.equal(child.pred, pred, 'predictions of the model loaded in a fresh process differ (bits)');

    const h = await model.fit(X, Y, FIT_CONTINUE);
    assert.equal(h.history.loss.length, 1);
    assert.deepEqual(child.loss, h.history.loss, 'continued-training loss history differs');
    assert.equal(child.checksum, weightsChecksum(model), 'weights after continued training differ');
    assert.equal(child.after, bitsHex(await model.predict(X)), 'predictions after continued training differ');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('SIGKILL during the save of a large model leaves the previous save loadable', { timeout: 600_000 }, async () => {
  const base = tmpDir();
  try {
    const prevDir = path.join(base, 'prev');
    const first = runChild([prevDir, 'save-big', '1']);
    assert.equal(first.status, 0, `first save failed: ${first.stderr}`);
    const prevPred = (JSON.parse(first.stdout.trim()) as { pred: string }).pred;
    const prevId = JSON.parse(fs.readFileSync(path.join(prevDir, 'model.json'), 'utf8')).saveId as string;
    assert.ok(fs.statSync(path.join(prevDir, 'model.safetensors')).size > 4_000_000, 'the large model has several MB of weights');
    const newPred = bitsHex(await bigModel(2).predict(BIG_X));
    assert.notEqual(newPred, prevPred);

    let midSave = 0;
    const landed: string[] = [];
    for (const delay of [0, 1, 2, 3, 5, 8, 12, 18, 25, 35, 50, 70, 100, 150, 250]) {
      const dir = path.join(base, `try-${delay}`);
      fs.cpSync(prevDir, dir, { recursive: true });
      const r = runChild([dir, 'kill-during-save', '2', String(delay)]);
      if (r.stdout.includes('completed')) break; // saves finish before the kill from here on
      assert.equal(r.signal, 'SIGKILL', `child neither completed nor was killed: ${r.stderr}`);
      const names = fs.readdirSync(dir);
      const temps = names.filter((n) => n.includes('.tmp-'));
      const ids = ['optimizer.safetensors', 'model.safetensors'].map((f) => fileSaveId(path.join(dir, f)));
      const touched = temps.length > 0 || ids.some((id) => id !== prevId);
      if (!touched) continue; // killed before the save wrote anything
      midSave++;
      const weightsNew = ids[1] !== prevId;
      landed.push(`delay ${delay}: temps [${temps.join(', ')}], optimizer ${ids[0] === prevId ? 'old' : 'new'}, weights ${weightsNew ? 'new' : 'old'}`);
      let loaded: Sequential;
      try {
        loaded = await loadModel(dir);
      } catch (err) {
        assert.fail(`killed mid-save (${landed.at(-1)}): loadModel refused the directory: ${(err as Error).message}`);
      }
      const got = bitsHex(await loaded.predict(BIG_X));
      // Only a kill between the weights' rename and model.json's may expose the new (complete) model.
      assert.equal(got, weightsNew ? newPred : prevPred, `killed mid-save (${landed.at(-1)}): wrong predictions after load`);
      fs.rmSync(dir, { recursive: true, force: true });
    }
    assert.ok(midSave > 0, 'no kill landed during a save; the test did not exercise anything');
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});

/** Asserts `fn` rejects with an Error whose message includes every one of `parts`. */
async function refuses(fn: () => Promise<unknown>, parts: string[], what: string): Promise<void> {
  await assert.rejects(fn, (err: unknown) => {
    assert.ok(err instanceof Error, `${what}: expected an Error, got ${String(err)}`);
    for (const p of parts) assert.ok(err.message.includes(p), `${what}: message ${JSON.stringify(err.message)} does not name ${p}`);
    return true;
  }, what);
}

async function assertUnchanged(model: Sequential, before: Record<string, string>, pred: string, what: string): Promise<void> {
  assert.deepEqual(snapshot(model), before, `${what}: weights changed after a refused loadWeights`);
  assert.equal(bitsHex(await model.predict(X)), pred, `${what}: predictions changed after a refused loadWeights`);
}

test('corrupt or mismatched model.safetensors is refused by loadModel and loadWeights, model unchanged', async () => {
  const base = tmpDir();
  try {
    const model = await trainedSmall();
    const goodDir = path.join(base, 'good');
    await model.save(goodDir);
    // The model that refuses the loads: different weights than the file, same architecture.
    const target = await trainedSmall();
    await target.fit(X, Y, { epochs: 1, batchSize: 2, seed: 9, verbose: 0 });
    const before = snapshot(target);
    const pred = bitsHex(await target.predict(X));
    assert.notDeepEqual(before, snapshot(model));

    const variant = (name: string, mutate: (file: string) => void): string => {
      const dir = path.join(base, name);
      fs.cpSync(goodDir, dir, { recursive: true });
      mutate(path.join(dir, 'model.safetensors'));
      return dir;
    };

    // Truncated: the data region is cut short.
    const truncDir = variant('truncated', (f) => {
      const b = fs.readFileSync(f);
      fs.writeFileSync(f, b.subarray(0, b.length - 13));
    });
    // Oversized header: the first 8 bytes claim a header far larger than the file.
    const hugeDir = variant('huge-header', (f) => {
      const b = fs.readFileSync(f);
      b.writeBigUInt64LE(0xffff_ffff_ffffn, 0);
      fs.writeFileSync(f, b);
    });
    const hugeDir2 = variant('huge-header-2', (f) => {
      const b = fs.readFileSync(f);
      b.writeBigUInt64LE(BigInt(b.length), 0);
      fs.writeFileSync(f, b);
    });
    for (const [what, dir] of [['truncated', truncDir], ['oversized header', hugeDir], ['header larger than the file', hugeDir2]] as const) {
      const file = path.join(dir, 'model.safetensors');
      await refuses(() => loadModel(dir), [file], `loadModel, ${what}`);
      await refuses(() => target.loadWeights(dir), [file], `loadWeights, ${what}`);
      await assertUnchanged(target, before, pred, what);
    }

    // Shape mismatch, for loadWeights: a whole save of a model with 6 LSTM units. Layer 0's weight
    // has the right shape, so a loader copying tensor by tensor would change it before failing.
    const otherDir = path.join(base, 'units6');
    const other = await trainedSmall(6);
    await other.save(otherDir);
    const otherFile = path.join(otherDir, 'model.safetensors');
    await refuses(() => target.loadWeights(otherDir), [otherFile, '1.weight_ih_l0'], 'loadWeights, shape mismatch');
    await assertUnchanged(target, before, pred, 'shape mismatch');

    // Shape mismatch, for loadModel: model.json of the 5-unit save with a weights file of the 6-unit
    // model that claims the same save (so it is not taken for an interrupted save's newer weights).
    const goodId = JSON.parse(fs.readFileSync(path.join(goodDir, 'model.json'), 'utf8')).saveId as string;
    const mixedDir = variant('mixed', (f) => {
      const { tensors } = decodeSafetensors(fs.readFileSync(otherFile), otherFile);
      fs.writeFileSync(f, encodeSafetensors(tensors, { 'rnnkit.saveId': goodId }));
    });
    const mixedFile = path.join(mixedDir, 'model.safetensors');
    await refuses(() => loadModel(mixedDir), [mixedFile, '1.weight_ih_l0'], 'loadModel, shape mismatch');
    await refuses(() => loadModel(mixedDir, { compile: false }), [mixedFile, '1.weight_ih_l0'], 'loadModel { compile: false }, shape mismatch');
    await refuses(() => target.loadWeights(mixedDir), [mixedFile, '1.weight_ih_l0'], 'loadWeights, shape mismatch (mixed)');
    await assertUnchanged(target, before, pred, 'shape mismatch (mixed)');

    // The intact save still loads, and loadWeights does change the model (so "unchanged" above means something).
    const ok = await loadModel(goodDir);
    assert.equal(bitsHex(await ok.predict(X)), bitsHex(await model.predict(X)));
    await target.loadWeights(goodDir);
    assert.deepEqual(snapshot(target), snapshot(model));
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});

test('model.json with an unknown format version is refused naming the file', async () => {
  const dir = tmpDir();
  try {
    const model = await trainedSmall();
    await model.save(dir);
    await loadModel(dir); // loads before the edit
    const file = path.join(dir, 'model.json');
    const json = JSON.parse(fs.readFileSync(file, 'utf8'));
    for (const v of [2, 0, '1', null]) {
      fs.writeFileSync(file, JSON.stringify({ ...json, formatVersion: v }));
      await refuses(() => loadModel(dir), [file, 'version'], `formatVersion ${JSON.stringify(v)}`);
    }
    const { formatVersion: _drop, ...noVersion } = json;
    fs.writeFileSync(file, JSON.stringify(noVersion));
    await refuses(() => loadModel(dir), [file, 'version'], 'formatVersion missing');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
