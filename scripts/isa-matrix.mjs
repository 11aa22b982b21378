// `npm run test:isa`: the suites that reach every native kernel (cells forward and backward in both
// dtypes, every variant and activation, stacks and bidirectional layers, the packed GEMM, training
// and the oracles) again under each slower kernel build the CPU runs: RNNKIT_ISA=avx2, then generic.
// The default build (the best) is what `npm test` ran. Exits with the first failing run's code.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const log = (msg) => console.error(`[isa] ${msg}`);

const SUITE = [
  'test/isa.test.ts',
  'test/activation-accuracy.test.ts',
  'test/gradcheck.test.ts',
  'test/variants-gradcheck.test.ts',
  'test/variants-reference.test.ts',
  'test/lstm-structures.test.ts',
  'test/tfjs-oracle.test.ts',
  'test/onnx-oracle.test.ts',
  'test/onnx-semantics.test.ts',
  'test/torch-golden.test.ts',
  'test/torch-stacks.test.ts',
  'test/torch-lstmp.test.ts',
  'test/stacks.test.ts',
  'test/stack-native.test.ts',
  'test/gemm.test.ts',
  'test/training.test.ts',
  'test/weight-grad-kernel.test.ts',
  'test/projection-bias.test.ts',
  'test/async.test.ts',
  'test/batch-invariance.test.ts',
  'test/staged-steps.test.ts',
  'test/serve.test.ts',
];

const ORDER = ['generic', 'avx2', 'avx512'];
const probe = spawnSync(process.execPath, ['--import', 'tsx', '-e', "import('./lib/index.ts').then((m) => console.log(m.cpuInfo().best))"], {
  cwd: root, encoding: 'utf8', env: { ...process.env, RNNKIT_ISA: '' },
});
if (probe.status !== 0) {
  log(`could not read the CPU's best kernel build:\n${probe.stderr}`);
  process.exit(1);
}
const best = probe.stdout.trim();
const builds = ['avx2', 'generic'].filter((isa) => ORDER.indexOf(isa) < ORDER.indexOf(best));
log(`best build on this CPU: ${best}; running ${SUITE.length} suites under ${builds.join(', ') || 'no slower build'}`);
for (const isa of builds) {
  const started = Date.now();
  log(`RNNKIT_ISA=${isa}`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', ...SUITE], { cwd: root, stdio: 'inherit', env: { ...process.env, RNNKIT_ISA: isa } });
  if (r.status !== 0) {
    log(`RNNKIT_ISA=${isa}: failed (${r.signal ? `signal ${r.signal}` : `exit ${r.status}`})`);
    process.exit(r.status || 1);
  }
  log(`RNNKIT_ISA=${isa}: passed in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}
