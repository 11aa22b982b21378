/**
 * The staged recurrence (native/core/sequence.cc, parallel_stages in native/core/thread_pool.cc):
 * a sequence's steps, forward and backward, as one pool job, threads meeting at one counter per
 * step, any thread taking over the slice of one that is late. Every output, final state and gradient must be bit-identical
 * to one thread, for the cell families and options that run staged (and one that does not), float32
 * and float64, uniform and variable lengths, inference and training, with 2 threads and with 5 on
 * a 2-core machine (participants descheduled, slices taken over), and inside a bidirectional layer
 * (each direction on its own thread, the staged job inside on one). In a child process, so a hang
 * or a crash fails this test with what happened.
 */
import { test } from 'node:test';
import { assertChildOk, runNodeChild } from './helpers/child.js';

test('staged steps: outputs, states and gradients bit-identical with 2 and 5 threads to 1 thread', (t) => {
  t.diagnostic(assertChildOk(runNodeChild('test/helpers/staged-body.ts', [], { timeout: 300_000 }), 'staged steps'));
});
