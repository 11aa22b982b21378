#!/usr/bin/env node
// The rnnkit command line (lib/cli.ts, compiled to dist/ by `npm install` / `npm run prepare`).
import { main } from '../dist/cli.js';

process.exitCode = await main(process.argv.slice(2));
