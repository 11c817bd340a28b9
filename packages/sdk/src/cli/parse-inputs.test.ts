import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { workflow } from '../define/workflow.js';
import { parseInputs } from './parse-inputs.js';

const wf = workflow({ name: 'cli.inputs', inputs: { rows: z.array(z.number()), name: z.string(), n: z.number(), flag: z.boolean() } }, () => ({}));

describe('--input parsing', () => {
  it('reads JSON when it fits the schema, else a plain string', () => {
    expect(parseInputs(wf, ['rows=[1,-2,3]', 'name=007', 'n=5', 'flag=true'])).toEqual({ rows: [1, -2, 3], name: '007', n: 5, flag: true });
    expect(parseInputs(wf, ['name=alice'])).toEqual({ name: 'alice' });
    expect(parseInputs(wf, ['name=a=b'])).toEqual({ name: 'a=b' });
  });

  it('names the workflow and the field for an unknown input or a malformed pair', () => {
    expect(() => parseInputs(wf, ['nope=1'])).toThrow(/workflow 'cli.inputs', field 'nope'/);
    expect(() => parseInputs(wf, ['rows'])).toThrow(/must look like name=value/);
  });
});
