import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { MemoflowError } from '@memoflow/engine';
import type { AnyWorkflow } from '../define/workflow.js';

/**
 * Parses `--input name=value` pairs. A value is read as JSON when that fits the input's schema
 * (`rows=[1,2]`, `n=5`, `flag=true`), else as a plain string (`name=alice`, `id=007`); `name=@file.json`
 * reads JSON from a file.
 */
export function parseInputs(workflow: AnyWorkflow, pairs: readonly string[], inputsFile?: string): { [name: string]: unknown } {
  const inputs: { [name: string]: unknown } = inputsFile === undefined ? {} : readJsonFile(inputsFile, workflow.workflowName, 'inputs-file');
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) {
      throw new MemoflowError('INPUT_SCHEMA_MISMATCH', `--input '${pair}' must look like name=value`, { workflow: workflow.workflowName });
    }
    const name = pair.slice(0, eq);
    const raw = pair.slice(eq + 1);
    const schema = (workflow.inputs as { [name: string]: z.ZodType | undefined })[name];
    if (schema === undefined) {
      throw new MemoflowError('UNKNOWN_INPUT', `workflow has no input '${name}' (inputs: ${Object.keys(workflow.inputs).join(', ') || 'none'})`, { workflow: workflow.workflowName, field: name });
    }
    inputs[name] = raw.startsWith('@') ? readJsonFile(raw.slice(1), workflow.workflowName, name) : pickValue(raw, schema);
  }
  return inputs;
}

function pickValue(raw: string, schema: z.ZodType): unknown {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return raw;
  }
  if (schema.safeParse(json).success || !schema.safeParse(raw).success) return json;
  return raw;
}

function readJsonFile(path: string, workflow: string, field: string): { [name: string]: unknown } {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as { [name: string]: unknown };
  } catch (error) {
    throw new MemoflowError('INPUT_SCHEMA_MISMATCH', `cannot read JSON from ${path}: ${(error as Error).message}`, { workflow, field });
  }
}
