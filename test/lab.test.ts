/**
 * The variant lab on tiny configurations (seconds each, each in a child process since it trains
 * through the native code): the claims of the seed that hold robustly at this size are asserted
 * with their margins, the SVG pictures are parsed for the series they must show, and the command
 * line and option checks are exercised. docs/lab.md reports a full run.
 *
 * Asserted claims (adding T = 50, 600 steps, 32 units, seeds 1 and 2):
 * - LSTM (V), CIFG and GRU solve it (held-out MSE ≤ 0.0333, a fifth of the trivial baseline 1/6)
 *   with every seed, while the tanh RNN stays near the baseline (final MSE ≥ 0.8 · 1/6);
 * - CIFG's final MSE is within 0.01 of the vanilla LSTM's (Greff et al.: coupling costs little);
 * - at initialisation IRNN keeps the gradient over the 50 steps at least 10× better than the tanh
 *   RNN (‖∂L/∂h_0‖/‖∂L/∂h_49‖), and after training LSTM and GRU carry it at least 1000× better
 *   than the tanh RNN, which did not learn the task.
 * Continual Reber (800 steps, seed 1): LSTM (V) and GRU predict ≥ 95% of the test strings legally
 * over 3000 symbols without a reset, while NFG (no forget gate) stays below 50% with a cell state
 * grown far beyond the range one step can add (RMS > 30).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';

import { runLab, CELL_LABELS, type LabOptions, type LabResult, type CellName } from '../lib/index.js';
import { assertChildOk, repoRoot, runNodeChild } from './helpers/child.js';

const BODY = path.join(repoRoot, 'test', 'helpers', 'lab-body.ts');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-lab-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

function lab(options: LabOptions, what: string): LabResult {
  const line = assertChildOk(runNodeChild(BODY, [JSON.stringify(options)], { timeout: 300_000 }), what);
  return JSON.parse(line.slice('ok: '.length)) as LabResult;
}

function row(r: LabResult, cell: CellName) {
  const s = r.summary.find((x) => x.cell === cell);
  assert.ok(s, `no summary row for ${cell}`);
  return s;
}

function flowRatio(r: LabResult, cell: CellName, phase: 'initialisation' | 'after training'): number {
  const f = r.flows.find((x) => x.cell === cell && x.phase === phase);
  assert.ok(f, `no gradient flow for ${cell} at ${phase}`);
  return f.norms[0] / f.norms[f.norms.length - 1];
}

/** All elements named `name` anywhere under a fast-xml-parser tree (preserveOrder off). */
function findAll(node: unknown, name: string, out: Record<string, unknown>[] = []): Record<string, unknown>[] {
  if (Array.isArray(node)) {
    for (const n of node) findAll(n, name, out);
  } else if (node !== null && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === name) for (const e of Array.isArray(v) ? v : [v]) out.push(e as Record<string, unknown>);
      findAll(v, name, out);
    }
  }
  return out;
}

function parseSvg(file: string): Record<string, unknown> {
  const text = fs.readFileSync(file, 'utf8');
  assert.equal(XMLValidator.validate(text), true, `${file} is not well-formed XML`);
  const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@' }).parse(text) as Record<string, unknown>;
  assert.ok(doc.svg, `${file}: no <svg> root`);
  return doc.svg as Record<string, unknown>;
}

/** The mark groups of one kind (e.g. 'mark-line role-mark') and the paths each holds. */
function markGroups(svg: Record<string, unknown>, cls: string): Record<string, unknown>[][] {
  return findAll(svg, 'g')
    .filter((g) => typeof g['@class'] === 'string' && (g['@class'] as string).startsWith(cls))
    .map((g) => (g.path === undefined ? [] : Array.isArray(g.path) ? g.path : [g.path]) as Record<string, unknown>[]);
}

const ADDING_CELLS: CellName[] = ['tanh', 'irnn', 'lstm', 'cifg', 'gru'];

test('adding T=50: LSTM, CIFG and GRU solve it, the tanh RNN does not; CIFG ≈ LSTM; IRNN/LSTM/GRU keep the gradient, the tanh RNN loses it', () => {
  const out = path.join(tmp, 'adding');
  const r = lab({ experiment: 'adding', lengths: [50], cells: ADDING_CELLS, seeds: 2, steps: 600, units: 32, flowLength: 50, out }, 'adding T=50');
  assert.equal(r.runs.length, ADDING_CELLS.length * 2);
  const baseline = r.experiments[0].tasks[0].baseline;
  assert.ok(Math.abs(baseline - 1 / 6) < 1e-12);
  for (const cell of ['lstm', 'cifg', 'gru'] as CellName[]) {
    for (const run of r.runs.filter((x) => x.cell === cell)) {
      assert.ok(run.solvedStep !== null && run.solvedStep <= 600, `${cell} seed ${run.seed} did not solve adding T=50 (final MSE ${run.final})`);
      assert.ok(run.final <= baseline / 5, `${cell} seed ${run.seed}: final MSE ${run.final}`);
    }
  }
  for (const run of r.runs.filter((x) => x.cell === 'tanh')) {
    assert.ok(run.final >= 0.8 * baseline, `tanh RNN seed ${run.seed} reached MSE ${run.final}: below 0.8 × the trivial baseline`);
    assert.equal(run.solvedStep, null);
  }
  const v = row(r, 'lstm').mean, cifg = row(r, 'cifg').mean;
  assert.ok(Math.abs(cifg - v) <= 0.01, `CIFG ${cifg} vs vanilla LSTM ${v}: more than 0.01 apart`);
  // Every run's curve starts at step 0 and ends at its last step; time is recorded.
  for (const run of r.runs) {
    assert.equal(run.curve[0].step, 0);
    assert.equal(run.curve[run.curve.length - 1].step, run.steps);
    assert.ok(run.seconds > 0);
  }
  // The gradient flow (seed 1, probe batch of the held-out set).
  assert.deepEqual(new Set(r.flows.map((f) => f.cell)), new Set(['tanh', 'irnn', 'lstm', 'gru']));
  for (const f of r.flows) assert.equal(f.norms.length, 50);
  const tanhInit = flowRatio(r, 'tanh', 'initialisation'), irnnInit = flowRatio(r, 'irnn', 'initialisation');
  assert.ok(irnnInit >= 10 * tanhInit, `at initialisation IRNN ${irnnInit} vs tanh ${tanhInit}`);
  const tanhAfter = flowRatio(r, 'tanh', 'after training');
  for (const cell of ['lstm', 'gru'] as CellName[]) {
    const after = flowRatio(r, cell, 'after training');
    assert.ok(after >= 1000 * tanhAfter, `after training ${cell} ${after} vs tanh ${tanhAfter}`);
  }

  // The files: results.json (the same result), results.md (a row per cell), two SVG pictures.
  const names = r.files.map((f) => path.basename(f)).sort();
  assert.deepEqual(names, ['lab-adding-curves.svg', 'lab-gradient-flow.svg', 'results.json', 'results.md']);
  const json = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')) as LabResult;
  assert.deepEqual(json.summary.map((s) => s.cell), r.summary.map((s) => s.cell));
  const md = fs.readFileSync(path.join(out, 'results.md'), 'utf8');
  for (const cell of ADDING_CELLS) assert.match(md, new RegExp(`\\| ${CELL_LABELS[cell].label.replace(/[()]/g, '\\$&')} \\| `));
  // Learning curves: one line per cell, each through the cell's evaluation points (600 / 25 + 1).
  const curves = parseSvg(path.join(out, 'lab-adding-curves.svg'));
  const lines = markGroups(curves, 'mark-line role-mark').flat();
  const cellsDrawn = new Set(lines.map((p) => /cell: ([^;]+)$/.exec(String(p['@aria-label']))?.[1]));
  assert.deepEqual(cellsDrawn, new Set(ADDING_CELLS.map((c) => CELL_LABELS[c].label)));
  for (const p of lines) assert.equal((String(p['@d']).match(/L/g) ?? []).length + 1, 600 / 25 + 1, `points of ${String(p['@aria-label'])}`);
  // The heat map: two panels (initialisation, after training), one cell per (cell, step).
  const flow = parseSvg(path.join(out, 'lab-gradient-flow.svg'));
  const panels = markGroups(flow, 'mark-rect role-mark');
  assert.equal(panels.length, 2);
  for (const rects of panels) {
    assert.equal(rects.length, 4 * 50);
    const rowsDrawn = new Set(rects.map((p) => /cell: ([^;]+)/.exec(String(p['@aria-label']))?.[1]));
    assert.deepEqual(rowsDrawn, new Set(['tanh RNN', 'IRNN', 'LSTM (V)', 'GRU']));
  }
  // The colour is log10 ‖∂L/∂h_t‖ of the records.
  const first = r.flows.find((f) => f.cell === 'tanh' && f.phase === 'initialisation')!;
  const label = panels.flat().map((p) => String(p['@aria-label'])).find((s) => /step t: 0; cell: tanh RNN/.test(s));
  assert.ok(label, 'no heat-map cell for tanh RNN at t = 0');
  // vega writes minus as U+2212.
  const shown = Number(/log10 ‖∂L\/∂h_t‖: ([−\-0-9.e]+)/.exec(label!)?.[1].replace(/−/g, '-'));
  assert.ok(Math.abs(shown - Math.log10(first.norms[0])) < 1e-6, `heat map shows ${shown}, the record ${Math.log10(first.norms[0])}`);
});

test('continual Reber without resets: LSTM and GRU learn it, NFG (no forget gate) fails as its cell state grows', () => {
  const r = lab({ experiment: 'reber', cells: ['lstm', 'nfg', 'gru'], seeds: 1, steps: 800 }, 'continual Reber');
  for (const cell of ['lstm', 'gru'] as CellName[]) assert.ok(row(r, cell).mean >= 0.95, `${cell}: ${row(r, cell).mean} of the strings`);
  const nfg = row(r, 'nfg');
  assert.ok(nfg.mean < 0.5, `NFG predicted ${nfg.mean} of the strings`);
  assert.ok(nfg.extra.cellRms > 30, `NFG cell-state RMS ${nfg.extra.cellRms}`);
  assert.ok(row(r, 'lstm').extra.cellRms > 0, 'LSTM cell-state RMS recorded');
});

test('copy, latch and char LM run on tiny configurations; the char LM beats the unigram baseline; the budget cuts runs short', () => {
  const copy = lab({ experiment: 'copy', cells: ['lstm', 'gru'], seeds: 1, steps: 30, evalEvery: 10 }, 'copy');
  assert.equal(copy.runs.length, 2);
  for (const run of copy.runs) {
    assert.deepEqual(run.curve.map((p) => p.step), [0, 10, 20, 30]);
    assert.ok(run.final >= 0 && run.final <= 1);
  }
  const latch = lab({ experiment: 'latch', cells: ['tanh', 'np'], seeds: 1, steps: 30 }, 'latch');
  for (const run of latch.runs) assert.ok(run.final >= 0 && run.final <= 1);
  const lm = lab({ experiment: 'charlm', cells: ['tanh', 'lstm', 'gru'], seeds: 1, steps: 100, units: 32 }, 'char LM');
  const unigram = lm.experiments[0].tasks[0].baseline;
  assert.ok(unigram > 3 && unigram < 5, `unigram entropy ${unigram} bits/char`);
  for (const s of lm.summary) assert.ok(s.mean < unigram - 0.25, `${s.cell}: ${s.mean} bits/char against the unigram ${unigram}`);
  const cut = lab({ experiment: 'latch', cells: ['tanh'], seeds: 1, steps: 1_000_000, budgetSeconds: 1 }, 'budget');
  assert.equal(cut.runs[0].budgetHit, true);
  assert.ok(cut.runs[0].steps < 1_000_000);
  assert.equal(cut.summary[0].budgetHit, 1);
});

test('runLab refuses unknown options and bad values, naming them', async () => {
  await assert.rejects(runLab({ experiment: 'adding', bogus: 1 } as never), /bogus/);
  await assert.rejects(runLab({ experiment: 'nope' as never }), /experiment: expected one of adding, reber, copy, latch, charlm or 'all'/);
  await assert.rejects(runLab({ experiment: 'adding', cells: ['lstm', 'xyz' as never] }), /unknown cell 'xyz'|unknown cell "xyz"|unknown cell xyz/);
  await assert.rejects(runLab({ experiment: 'adding', lengths: [1] }), RangeError);
  await assert.rejects(runLab({ experiment: 'adding', seeds: 0 }), /seeds: expected a positive integer/);
  await assert.rejects(runLab({ experiment: 'adding', budgetSeconds: -1 }), /budgetSeconds/);
  await assert.rejects(runLab({ experiment: 'charlm', text: '/nonexistent.txt' }), /text: expected an existing text file/);
  await assert.rejects(runLab({ experiment: 'latch', png: true }), /png: needs options.out/);
});

test('rnnkit lab: prints the table, writes the pictures, exits 2 on a usage error', () => {
  const bin = path.join(repoRoot, 'bin', 'rnnkit.mjs');
  const out = path.join(tmp, 'cli');
  const r = spawnSync(process.execPath, [bin, 'lab', 'latch', '--cells', 'tanh,gru', '--seeds', '1', '--steps', '4', '--eval-every', '2', '--no-progress', '--out', out, '--png'],
    { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.signal, null, r.stderr);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /\| tanh RNN \|/);
  assert.match(r.stdout, /\| GRU \|/);
  assert.ok(fs.existsSync(path.join(out, 'lab-latch-curves.svg')));
  const svg = parseSvg(path.join(out, 'lab-latch-curves.svg'));
  // --png: the same picture as PNG at twice the SVG's size.
  const png = fs.readFileSync(path.join(out, 'lab-latch-curves.png'));
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
  assert.equal(png.toString('latin1', 12, 16), 'IHDR');
  assert.equal(png.readUInt32BE(16), 2 * Number(svg['@width']));
  assert.equal(png.readUInt32BE(20), 2 * Number(svg['@height']));
  const bad = spawnSync(process.execPath, [bin, 'lab', 'adding', '--cells', 'lstm,bogus'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(bad.status, 2, bad.stderr);
  assert.match(bad.stderr, /bogus/);
  const unknown = spawnSync(process.execPath, [bin, 'lab', 'nothing'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(unknown.status, 2);
});
