// Makes a fresh clone ready to run (`npm test`, `npm run demo`, `npm run bench` call this first):
// OpenBLAS and the build tools (through apt-get when running as root, else the exact command to run),
// the npm dependencies, and the native addon. Each step is skipped when already done.
// Uses Node's built-ins only, since node_modules may not exist yet.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const log = (msg) => console.error(`[setup] ${msg}`);

function run(cmd, args, opts = {}) {
  log(`${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts });
  if (r.status !== 0) {
    log(`failed: ${cmd} ${args.join(' ')} (exit ${r.status ?? r.signal})`);
    process.exit(r.status || 1);
  }
}

function has(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function findOpenBlas() {
  const headers = [
    '/usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h',
    '/usr/include/aarch64-linux-gnu/openblas-pthread/cblas.h',
    '/usr/include/openblas/cblas.h',
    '/usr/local/include/cblas.h',
    '/opt/homebrew/opt/openblas/include/cblas.h',
    '/usr/local/opt/openblas/include/cblas.h',
  ];
  if (process.env.OPENBLAS_HOME && fs.existsSync(path.join(process.env.OPENBLAS_HOME, 'include', 'cblas.h'))) return true;
  return headers.some((h) => fs.existsSync(h));
}

function ensureSystemPackages() {
  const missing = [];
  if (!findOpenBlas()) missing.push('libopenblas-dev');
  if (!has('cmake')) missing.push('cmake');
  if (!has('c++') && !has('g++')) missing.push('g++');
  if (missing.length === 0) return;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (process.platform === 'linux' && isRoot && has('apt-get')) {
    run('apt-get', ['update', '-qq']);
    run('apt-get', ['install', '-y', '-qq', ...missing], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    return;
  }
  log(`missing: ${missing.join(', ')}. Install them, then run this again:`);
  log('  Debian/Ubuntu: sudo apt-get install -y libopenblas-dev cmake g++');
  log('  Fedora:        sudo dnf install -y openblas-devel cmake gcc-c++');
  log('  macOS:         brew install openblas cmake');
  process.exit(1);
}

function newestMtime(dir, filter) {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(full, filter));
    else if (filter(entry.name)) newest = Math.max(newest, fs.statSync(full).mtimeMs);
  }
  return newest;
}

function ensureDependencies() {
  const marker = path.join(root, 'node_modules', '.package-lock.json');
  const lock = path.join(root, 'package-lock.json');
  const stale = !fs.existsSync(marker) || (fs.existsSync(lock) && fs.statSync(lock).mtimeMs > fs.statSync(marker).mtimeMs);
  if (!stale) return;
  // npm ci also runs this package's install script, which builds the addon.
  run('npm', [fs.existsSync(lock) ? 'ci' : 'install', '--no-audit', '--no-fund']);
}

function ensureAddon() {
  const addon = path.join(root, 'build', 'Release', 'rnnkit.node');
  const sources = Math.max(
    newestMtime(path.join(root, 'native'), (n) => /\.(cc|h)$/.test(n)),
    fs.statSync(path.join(root, 'CMakeLists.txt')).mtimeMs,
  );
  if (fs.existsSync(addon) && fs.statSync(addon).mtimeMs >= sources) return;
  run(process.execPath, [path.join(root, 'node_modules', 'cmake-js', 'bin', 'cmake-js'), 'compile']);
}

const [major] = process.versions.node.split('.').map(Number);
if (major < 18) {
  log(`Node.js ${process.versions.node} is too old: rnnkit needs Node.js 18 or newer`);
  process.exit(1);
}
ensureSystemPackages();
ensureDependencies();
ensureAddon();
