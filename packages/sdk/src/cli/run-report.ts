import type { RunHandle } from '../client/run-handle.js';
import { lostWritesNote, waitedNote } from '../log/event-log.js';
import { cutoffNote, cutoffReports, savedCompute, savedComputeLine } from '../log/saved-compute.js';

/**
 * Waits for a run the CLI started (`run`, `runs retry`) and reports it: the summary line with a
 * count per cache status (RECOVERED, WAITING and the rest) on standard error and the outputs on
 * standard output, or one JSON line with `--json`. Returns the exit code (0 succeeded, 1 not).
 */
export async function reportRun(run: RunHandle<unknown>, json: boolean): Promise<number> {
  const report = await run.wait();
  const counts = new Map<string, number>();
  // A cancelled node is counted as such, whatever its cache status was when it stopped.
  for (const node of report.nodes) {
    const label = node.status === 'cancelled' ? 'cancelled' : (node.cacheStatus ?? '-');
    counts.set(label, (counts.get(label) ?? 0) + 1);
  }
  const summary = [...counts].map(([status, n]) => `${n} ${status}`).join(', ');
  if (json) {
    const cache = { ...savedCompute(report.nodes), cutoffHints: cutoffReports(report.nodes) };
    process.stdout.write(`${JSON.stringify({ event: 'run:result', runId: report.id, status: report.status, outputs: report.outputs, error: report.error, cache })}\n`);
  } else {
    const cutoff = cutoffNote(report.nodes);
    process.stderr.write(`run ${report.id} ${report.status} (${report.nodes.length} nodes: ${summary}${waitedNote(report.nodes)}${lostWritesNote(report.nodes)}; ${savedComputeLine(report.nodes)}${cutoff === '' ? '' : `; ${cutoff}`})\n`);
    if (report.status === 'succeeded') process.stdout.write(`${JSON.stringify(report.outputs, null, 2)}\n`);
  }
  return report.status === 'succeeded' ? 0 : 1;
}
