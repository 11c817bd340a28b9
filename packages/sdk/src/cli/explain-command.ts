import type { Command } from 'commander';
import { shortKey, type KeyDifference, type NodeExplanation } from '@memoflow/engine';
import type { Memoflow } from '../client/connect.js';
import type { StorageFlags } from './main.js';
import { printTable } from './table.js';

/**
 * `memoflow cache explain <run> <node> [--json]`: why a node had its cache status. The human form
 * is a short block: status, key, reason, the parts that differ from the nearest entry (was → now),
 * then the chain of upstream nodes a cascade came from, one line each; `--json` prints the
 * explanation object as `mf.explain` returns it.
 */
export function addExplainCommand(
  cache: Command,
  withStorage: (command: Command) => Command,
  open: (flags: StorageFlags) => Promise<Memoflow>,
): void {
  withStorage(
    cache
      .command('explain')
      .description("why a node had its cache status: its key parts and, for a miss, what differs from the nearest entry of its task; for a cascade, which upstream node reran and why")
      .argument('<run>', 'run id')
      .argument('<node>', "node id (a dynamic or sub-workflow node's children: <container>.<child>)"),
  ).action(async (runId: string, nodeId: string, flags: StorageFlags) => {
    const mf = await open(flags);
    try {
      const explanation = await mf.explain(runId, nodeId);
      if (flags.json === true) {
        process.stdout.write(`${JSON.stringify(explanation, null, 2)}\n`);
        return;
      }
      printExplanation(explanation, process.stdout);
    } finally {
      await mf.close();
    }
  });
}

/** The human form of an explanation (exported for tests and the terminal picture). */
export function printExplanation(explanation: NodeExplanation, stream: NodeJS.WritableStream): void {
  stream.write(`node    ${explanation.node}  (${explanation.task}, run ${explanation.runId})\n`);
  stream.write(`status  ${statusText(explanation)}\n`);
  stream.write(`key     ${explanation.key ?? '-'}\n`);
  if (explanation.parts !== null) {
    const { project, domain, version } = explanation.parts;
    stream.write(`parts   ${project}/${domain}  version ${version}  signature ${shortKey(explanation.parts.signature)}  inputs ${Object.keys(explanation.parts.inputs).join(', ') || '(none)'}\n`);
  }
  stream.write(`reason  ${explanation.reason}\n`);
  if (explanation.nearest !== null) {
    const n = explanation.nearest;
    stream.write(`nearest ${shortKey(n.key)}  run ${n.runId}  node ${n.nodeId}  ${n.project}/${n.domain}  ${n.createdAt.toISOString()}\n`);
  }
  if (explanation.differences.length > 0) {
    stream.write('\n');
    printTable(['PART', 'NAME', 'WAS', 'NOW'], explanation.differences.map(differenceRow), stream);
  }
  let upstream = explanation.upstream;
  if (upstream !== undefined) stream.write('\nwhy upstream ran:\n');
  for (let depth = 1; upstream !== undefined; depth++, upstream = upstream.upstream) {
    const indent = '  '.repeat(depth);
    // The reason names the differences already (describeDifferences).
    stream.write(`${indent}${upstream.node}  ${statusText(upstream)}: ${upstream.reason}\n`);
  }
}

function statusText(explanation: NodeExplanation): string {
  if (explanation.status === null) return `- (${explanation.phase})`;
  return explanation.status === 'SKIPPED' ? `SKIPPED(${explanation.cacheReason ?? ''})` : explanation.status;
}

function differenceRow(difference: KeyDifference): string[] {
  const cell = (value: unknown) => (value === undefined ? (difference.change === 'added' || difference.change === 'removed' ? '(absent)' : '?') : clip(JSON.stringify(value)));
  const name = difference.name ?? '';
  const was = difference.change === 'added' ? '(absent)' : cell(difference.was);
  const now = difference.change === 'removed' ? '(absent)' : cell(difference.now);
  if (difference.part === 'signature' && difference.name === undefined) return ['signature', '(digest)', shortKey(typeof difference.was === 'string' ? difference.was : null), `→ ${shortKey(typeof difference.now === 'string' ? difference.now : null)}`];
  return [difference.part, name, was, `→ ${now}`];
}

function clip(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
