/**
 * native.measurePeak (the bench's machine limits): its figures are finite rates > 0 for the build in
 * use (the default and RNNKIT_ISA=avx2 / generic: each build's FMA loop runs), and bad options are a
 * TypeError or RangeError naming the option — in child processes, so a crash fails the test with its
 * signal. The figures themselves are timings and are not compared with anything but 0.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertChildOk, runNodeChild } from './helpers/child.js';

for (const isa of ['', 'avx2', 'generic']) {
  test(`measurePeak${isa ? ` (RNNKIT_ISA=${isa})` : ''}: shape, positive rates, argument errors`, (t) => {
    const line = assertChildOk(runNodeChild('test/helpers/peak-body.ts', [], { env: { RNNKIT_ISA: isa } }), `measurePeak ${isa || 'default'}`);
    const r = JSON.parse(line.slice('ok: '.length)) as { all: { isa: string }; one: { isa: string } };
    if (isa) {
      // The FMA loop follows the selected build unless the CPU cannot run it (then the best one).
      assert.ok(r.all.isa === isa || (isa === 'avx2' && r.all.isa === 'generic'), `RNNKIT_ISA=${isa}: ran ${r.all.isa}`);
    }
    t.diagnostic(line);
  });
}
