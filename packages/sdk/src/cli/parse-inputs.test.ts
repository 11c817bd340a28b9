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

describe('--input refuses what it cannot read', () => {
  it('a value that looks like JSON but does not parse is an error naming the field, not a string', () => {
    expect(() => parseInputs(wf, ['name={"a":'])).toThrow(/field 'name'.*looks like JSON but does not parse/);
    expect(() => parseInputs(wf, ['rows=[1,2'])).toThrow(/field 'rows'/);
    expect(parseInputs(wf, ['name="{\\"a\\":"'])).toEqual({ name: '{"a":' });
  });

  it('an input given twice is an error', () => {
    expect(() => parseInputs(wf, ['n=1', 'n=2'])).toThrow(/field 'n'.*more than once/);
  });

  it('an inherited name is not an input', () => {
    expect(() => parseInputs(wf, ['toString=1'])).toThrow(/no input 'toString'/);
  });
});

describe('generated --input strings', () => {
  it('give a value or a MemoflowError naming the workflow, never another error', async () => {
    const fc = (await import('fast-check')).default;
    const { MemoflowError } = await import('@memoflow/engine');
    const names = fc.constantFrom('rows', 'name', 'n', 'flag', 'nope', '', '__proto__', 'constructor');
    const values = fc.oneof(fc.string(), fc.json(), fc.constantFrom('{', '[', '{"a":', '[1,', '@/nonexistent.json', '@', '"', 'null', '1e999'));
    fc.assert(
      fc.property(fc.array(fc.tuple(names, values), { maxLength: 4 }), (pairs) => {
        try {
          parseInputs(wf, pairs.map(([name, value]) => `${name}=${value}`));
        } catch (error) {
          expect(error).toBeInstanceOf(MemoflowError);
          expect((error as Error).message).toMatch(/workflow 'cli\.inputs'/);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
