// After `npm run prebuild`: lists the prebuilt binaries and, on Linux, their shared-library
// dependencies, to show that OpenBLAS is linked in statically (no libopenblas in the list).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'prebuilds');
for (const platform of fs.readdirSync(dir).filter((d) => fs.statSync(path.join(dir, d)).isDirectory())) {
  for (const file of fs.readdirSync(path.join(dir, platform))) {
    const full = path.join(dir, platform, file);
    console.log(`${path.relative(process.cwd(), full)}  (${(fs.statSync(full).size / 1e6).toFixed(1)} MB)`);
    if (process.platform === 'linux') {
      const deps = execFileSync('ldd', [full], { encoding: 'utf8' });
      console.log(deps.replace(/^/gm, '    '));
      if (/openblas/i.test(deps)) {
        console.error('error: the prebuild links OpenBLAS dynamically');
        process.exit(1);
      }
    }
  }
}
