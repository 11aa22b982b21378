#!/usr/bin/env node
// The rnnkit command line (lib/cli.ts, compiled to dist/ by `npm install` / `npm run prepare`).
import { main } from '../dist/cli.js';

// A reader that stops early (`rnnkit inspect … | head`) closes the pipe: that ends the output, not
// an error worth a stack trace.
for (const s of [process.stdout, process.stderr]) {
  s.on('error', (e) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}
process.exitCode = await main(process.argv.slice(2));
