import type { Command } from 'commander';
import { PLAN_PREDICTIONS, shortKey, type PlannedNode, type WorkflowPlan } from '@memoflow/engine';
import { DEFAULT_DOMAIN, DEFAULT_PROJECT, type Memoflow } from '../client/connect.js';
import { drawDagTree } from './dag-tree.js';
import { loadUserModule, pickWorkflow } from './load-module.js';
import type { StorageFlags } from './main.js';
import { collectInputs, parseInputs } from './parse-inputs.js';

/** Lines are not cut when the output is not a terminal: a reason is worth reading whole in a file or a pipe. */
const PIPED_WIDTH = 10_000;

/**
 * `memoflow plan <file> <workflow> --input ...`: what `memoflow run` with the same arguments would
 * do now, drawn as the DAG with the prediction per node (`--json`: the plan object). Reads the
 * catalog only: no run is created, nothing runs or is written. Bad definitions and inputs are
 * refused before the store opens, as `run` refuses them.
 */
export function addPlanCommand(program: Command, withStorage: (command: Command) => Command, open: (flags: StorageFlags) => Promise<Memoflow>): void {
  withStorage(
    program
      .command('plan')
      .description('predict what `memoflow run` would do, node by node (HIT, MISS, SKIPPED, ...), without running anything')
      .argument('<file>', 'module exporting the workflow and its tasks (.ts or .js)')
      .argument('<workflow>', 'workflow name')
      .option('-i, --input <name=value...>', 'an input, as for `memoflow run`', collectInputs, [])
      .option('--inputs-file <file>', 'a JSON object of inputs')
      .option('--project <project>', 'project', DEFAULT_PROJECT)
      .option('--domain <domain>', 'domain', DEFAULT_DOMAIN)
      .option('--overwrite-cache', 'plan a run with --overwrite-cache'),
  ).action(async (file: string, name: string, flags: StorageFlags & { input: string[]; inputsFile?: string; project: string; domain: string; overwriteCache?: boolean }) => {
    const module = await loadUserModule(file);
    const workflow = pickWorkflow(module, name);
    const inputs = parseInputs(workflow, flags.input, flags.inputsFile);
    // Refused before the store opens, as `run` does: a typo must not wait for PGlite to start.
    void workflow.spec;
    workflow.prepareInputs(inputs);
    const mf = await open(flags);
    try {
      const plan = await mf.plan(workflow, inputs, { project: flags.project, domain: flags.domain, overwriteCache: flags.overwriteCache === true });
      if (flags.json === true) process.stdout.write(`${JSON.stringify(plan, null, 2)}\n`);
      else process.stdout.write(`${formatPlan(plan, process.stdout.isTTY ? (process.stdout.columns ?? 120) : PIPED_WIDTH).join('\n')}\n`);
    } finally {
      await mf.close();
    }
  });
}

/** The plan as the terminal shows it: a title, the DAG with a prediction per node, and a summary. */
export function formatPlan(plan: WorkflowPlan, width: number): string[] {
  const title = `plan for ${plan.workflow} in ${plan.project}/${plan.domain}${plan.overwriteCache ? ' with --overwrite-cache' : ''} (nothing runs)`;
  const tree = drawDagTree(
    plan.nodes.map((node) => ({ id: node.node, parents: node.needs, container: node.parent, columns: [predictionText(node), node.task, shortKey(node.key), node.reason] })),
    { width, headers: ['NODE', 'PLAN', 'TASK', 'KEY', 'WHY'] },
  );
  const counts = PLAN_PREDICTIONS.filter((p) => plan.counts[p] > 0).map((p) => `${plan.counts[p]} ${p}`);
  const { batches, queries, keys } = plan.lookups;
  const read = batches === 0 ? 'no catalog lookup' : `${keys} key${keys === 1 ? '' : 's'} looked up in ${queries} catalog quer${queries === 1 ? 'y' : 'ies'} (${batches} level${batches === 1 ? '' : 's'})`;
  return [title, ...tree, `${plan.nodes.length} node${plan.nodes.length === 1 ? '' : 's'}: ${counts.join(', ') || 'none'}; ${read}`];
}

function predictionText(node: PlannedNode): string {
  return node.prediction === 'SKIPPED' ? `SKIPPED(${node.skipReason ?? ''})` : node.prediction;
}
