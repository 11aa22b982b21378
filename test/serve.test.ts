/**
 * Serving: streams with carried state and the dynamic batcher (lib/serve). Each case runs in a
 * child process (native calls on the thread pool); the bodies are in test/helpers/serve-body.ts.
 * The oracles: model.predict over the whole sequence (streams, to 2e-6), and each stream or
 * request run alone (batched results must be bit-identical to it).
 */
import { test } from 'node:test';
import path from 'node:path';

import { assertChildOk, repoRoot, runNodeChild } from './helpers/child.js';

const body = path.join(repoRoot, 'test', 'helpers', 'serve-body.ts');
function serveCase(name: string, title: string): void {
  test(title, (t) => {
    t.diagnostic(assertChildOk(runNodeChild(body, [name], { timeout: 240_000 }), name));
  });
}

serveCase('streams', 'streams: steps agree with predict; batched stream steps bit-identical to each stream alone; snapshot/restore/fork/toBytes continue identically; bidirectional, goBackwards, masks and bad inputs refused');
serveCase('move', 'a stream serialised with toBytes() continues bit-identically in another process that loads the saved model');
serveCase('batcher', 'batcher: concurrent predict/step/feed with aborted, failing and over-quota requests mixed in; every accepted result bit-identical to it run alone');
serveCase('property', 'batcher property (fast-check): random request mixes, batch sizes and lengths bit-identical to each request alone');
serveCase('queue', 'batcher queue bound: at most maxQueue waiting, the rest refused with QueueFullError');
serveCase('eager', 'batcher eager (default): an idle batcher runs a lone request at the next turn instead of after the window; requests of one turn share a batch; eager false waits');
serveCase('shutdown', 'batcher.close() drains: no accepted request is lost, later ones are refused');
