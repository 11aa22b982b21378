#!/usr/bin/env node
// Stands in for node-gyp when prebuildify builds (`npm run prebuild`): prebuildify always asks for
// `node-gyp rebuild …`; this runs cmake-js instead, linking OpenBLAS statically so the prebuild
// loads on machines without OpenBLAS, in its own build directory (build-static/), then puts the result
// at build/Release/rnnkit.node, where prebuildify picks it up.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const cmakeJs = path.join(path.dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
const debug = process.argv.includes('--debug');
const config = debug ? 'Debug' : 'Release';
const args = [cmakeJs, 'rebuild', '--out', 'build-static', '--CDRNNKIT_STATIC_OPENBLAS=ON', ...(debug ? ['--debug'] : [])];
const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
if (result.status !== 0) process.exit(result.status ?? 1);
const target = path.join(root, 'build', config, 'rnnkit.node');
fs.mkdirSync(path.dirname(target), { recursive: true });
fs.copyFileSync(path.join(root, 'build-static', config, 'rnnkit.node'), `${target}.tmp`);
fs.renameSync(`${target}.tmp`, target);
