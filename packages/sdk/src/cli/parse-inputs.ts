import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from 'commander';
import type { z } from 'zod';
import { MemoflowError } from '@memoflow/engine';
import type { AnyWorkflow } from '../define/workflow.js';

/**
 * Commander's accumulator for `--input`: an input given twice is an error (which of the two was
 * meant?), not "the last one wins".
 */
export function collectInputs(value: string, previous: readonly string[]): string[] {
  const name = value.slice(0, Math.max(0, value.indexOf('=')));
  if (name !== '' && previous.some((pair) => pair.startsWith(`${name}=`))) {
    throw new InvalidArgumentError(`input '${name}' is given more than once.`);
  }
  return [...previous, value];
}

/**
 * Parses `--input name=value` pairs. A value is read as JSON when that fits the input's schema
 * (`rows=[1,2]`, `n=5`, `flag=true`), else as a plain string (`name=alice`, `id=007`); `name=@file.json`
 * reads JSON from a file. A value that looks like a JSON object or array (`{...`, `[...`) but does
 * not parse is an error, never a string: a typo must not become an input (and a cache key).
 * `--input` overrides the same name from `--inputs-file`.
 */
export function parseInputs(workflow: AnyWorkflow, pairs: readonly string[], inputsFile?: string): { [name: string]: unknown } {
  const inputs: { [name: string]: unknown } = inputsFile === undefined ? {} : readInputsFile(inputsFile, workflow.workflowName);
  const seen = new Set<string>();
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) {
      throw new MemoflowError('INPUT_SCHEMA_MISMATCH', `--input '${pair}' must look like name=value`, { workflow: workflow.workflowName, field: 'input' });
    }
    const name = pair.slice(0, eq);
    const raw = pair.slice(eq + 1);
    if (seen.has(name)) {
      throw new MemoflowError('INPUT_SCHEMA_MISMATCH', `--input '${name}' is given more than once`, { workflow: workflow.workflowName, field: name });
    }
    seen.add(name);
    const schema = Object.hasOwn(workflow.inputs, name) ? (workflow.inputs as { [name: string]: z.ZodType | undefined })[name] : undefined;
    if (schema === undefined) {
      throw new MemoflowError('UNKNOWN_INPUT', `workflow has no input '${name}' (inputs: ${Object.keys(workflow.inputs).join(', ') || 'none'})`, { workflow: workflow.workflowName, field: name });
    }
    inputs[name] = raw.startsWith('@') ? readJsonFile(raw.slice(1), workflow.workflowName, name) : pickValue(raw, schema, workflow.workflowName, name);
  }
  return inputs;
}

function pickValue(raw: string, schema: z.ZodType, workflow: string, name: string): unknown {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (error) {
    if (/^\s*[[{]/.test(raw)) {
      throw new MemoflowError(
        'INPUT_SCHEMA_MISMATCH',
        `--input ${name}=${abbreviate(raw)} looks like JSON but does not parse (${(error as Error).message}); to pass it as a string, quote it as a JSON string: ${name}=${abbreviate(JSON.stringify(raw))}`,
        { workflow, field: name },
      );
    }
    return raw;
  }
  if (accepts(schema, json) || !accepts(schema, raw)) return json;
  return raw;
}

/** A schema whose `safeParse` throws (not zod, or a refinement that throws) accepts nothing here; validation names it later. */
function accepts(schema: z.ZodType, value: unknown): boolean {
  try {
    return typeof schema.safeParse === 'function' && schema.safeParse(value).success;
  } catch {
    return false;
  }
}

function abbreviate(text: string): string {
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}

function readInputsFile(path: string, workflow: string): { [name: string]: unknown } {
  const value = readJsonFile(path, workflow, 'inputs-file');
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new MemoflowError('INPUT_SCHEMA_MISMATCH', `--inputs-file ${path} must hold a JSON object of inputs, not ${Array.isArray(value) ? 'an array' : value === null ? 'null' : `a ${typeof value}`}`, { workflow, field: 'inputs-file' });
  }
  return value as { [name: string]: unknown };
}

function readJsonFile(path: string, workflow: string, field: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new MemoflowError('INPUT_SCHEMA_MISMATCH', `cannot read ${path}: ${(error as Error).message}`, { workflow, field });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new MemoflowError('INPUT_SCHEMA_MISMATCH', `${path} is not JSON: ${(error as Error).message}`, { workflow, field });
  }
}
