// `npm run soak`: the long memory soak. Runs test/helpers/soak-body.ts (forward, forwardAsync and
// training steps with Adam on LSTM-with-projection, LSTM, GRU and SimpleRNN, float32) for many
// iterations, sampling memory after a warm-up, and prints the figures and a table of the samples.
// Exits with the body's status (1 when memory kept growing).
//
//   npm run soak                                  100000 iterations
//   npm run soak -- --iterations 20000
//   npm run soak -- --seconds 600                 fill a time budget (--iterations, if given, caps it)
//   npm run soak -- --warmup 2000 --samples 80    (defaults: 1000 warm-up iterations, 50 samples)
//
// RNNKIT_ADDON selects another build of the addon (see lib/native.ts).
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);

function take(name) {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const v = argv[i + 1];
  if (v === undefined || !Number.isFinite(Number(v)) || Number(v) <= 0) {
    console.error(`soak: --${name} needs a positive number, got ${v}`);
    process.exit(2);
  }
  argv.splice(i, 2);
  return v;
}

const seconds = take('seconds');
const iterations = take('iterations') ?? (seconds ? '100000000' : '100000');
const warmup = take('warmup') ?? '1000';
const samples = take('samples') ?? '50';
const rest = argv.filter((a) => a !== '--table');
if (rest.length) {
  console.error(`soak: unknown argument(s) ${rest.join(' ')}; use --iterations N, --seconds S, --warmup W, --samples K`);
  process.exit(2);
}

const args = [
  '--expose-gc', '--import', 'tsx', 'test/helpers/soak-body.ts',
  '--iterations', iterations, '--warmup', warmup, '--samples', samples,
  ...(seconds ? ['--seconds', seconds] : []),
  '--table',
];
console.error(`[soak] node ${args.join(' ')}`);
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
if (r.error) {
  console.error(`[soak] could not start node: ${r.error.message}`);
  process.exit(1);
}
if (r.signal) console.error(`[soak] the body was killed by ${r.signal}`);
process.exit(r.status ?? 1);
