// Runs ELK layouts off the server's event loop (ELK is synchronous JavaScript: a few hundred
// nodes take seconds, which would stall live streams and, under `memoflow run --ui`, the run's
// controller). Plain JavaScript so the same file runs from src (tests) and dist (the CLI).
import { parentPort } from 'node:worker_threads';
import { createRequire } from 'node:module';

const ELK = createRequire(import.meta.url)('elkjs/lib/elk.bundled.js');
const elk = new ELK();

parentPort.on('message', async ({ id, graph }) => {
  try {
    parentPort.postMessage({ id, graph: await elk.layout(graph) });
  } catch (error) {
    parentPort.postMessage({ id, error: error instanceof Error ? error.message : String(error) });
  }
});
