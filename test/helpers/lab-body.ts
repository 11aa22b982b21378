/**
 * The child side of test/lab.test.ts: runs one tiny lab configuration (JSON in argv[2]) and prints
 * `ok: ` and the result as JSON (the runs' curves, the summary, the gradient flows and the files).
 */
import { runLab, type LabOptions } from '../../lib/index.js';

const options = JSON.parse(process.argv[2]) as LabOptions;
const r = await runLab(options);
console.log(`ok: ${JSON.stringify(r, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v))}`);
