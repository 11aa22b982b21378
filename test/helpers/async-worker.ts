/**
 * worker_threads body for test/async.test.ts: builds the jobs it is given (workerData.specs), runs
 * them several times — all forwardAsync calls concurrently, then sync — and posts every result
 * back. Any exception is posted as { error } so the test can report it.
 */
import { parentPort, workerData } from 'node:worker_threads';

import { buildJob, resultOf, type JobResult, type JobSpec } from './async-jobs.js';

const { specs, rounds } = workerData as { specs: JobSpec[]; rounds: number };

try {
  const jobs = specs.map(buildJob);
  const asyncResults: JobResult[][] = [];
  const syncResults: JobResult[][] = [];
  for (let round = 0; round < rounds; round++) {
    const rs = await Promise.all(jobs.map((j) => j.layer.forwardAsync(j.x, { initialState: j.initialState })));
    asyncResults.push(rs.map(resultOf));
    syncResults.push(jobs.map((j) => resultOf(j.layer.forward(j.x, { initialState: j.initialState }))));
  }
  parentPort!.postMessage({ asyncResults, syncResults });
} catch (e) {
  parentPort!.postMessage({ error: e instanceof Error ? `${e.name}: ${e.message}\n${e.stack}` : String(e) });
}
