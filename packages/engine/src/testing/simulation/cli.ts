/**
 * `npm run simulate -- --seeds N [--seed S --path P]`: runs N seeded controller scenarios (default
 * 10,000) and checks every invariant; a failure prints the shrunk scenario and the seed and path
 * that replay it.
 */
import { parseArgs } from 'node:util';
import { simulateMany } from './simulate.js';

const { values } = parseArgs({ options: { seeds: { type: 'string' }, seed: { type: 'string' }, path: { type: 'string' } } });
const runs = Number(values.seeds ?? '10000');
if (!Number.isInteger(runs) || runs < 1) {
  console.error(`simulate: --seeds must be a whole number >= 1, got ${values.seeds}`);
  process.exit(2);
}
const started = Date.now();
try {
  await simulateMany({ runs, ...(values.seed === undefined ? {} : { seed: Number(values.seed) }), ...(values.path === undefined ? {} : { path: values.path }) });
  console.log(`simulate: ${runs} scenarios, every invariant held (${((Date.now() - started) / 1000).toFixed(1)} s)`);
} catch (error) {
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(1);
}
