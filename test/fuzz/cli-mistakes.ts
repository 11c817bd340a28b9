/**
 * Generated command lines with one user mistake each, for the CLI half of the fuzz suite: bad
 * values of numeric flags, unknown options and commands, missing arguments, bad choices, flows
 * files that are missing, folders or not modules, unknown workflow names, bad `--input` and
 * `--inputs-file` values, and unusable settings (`--data-dir`, DATABASE_URL, REDIS_URL). Each
 * case says what the one error line must contain: the flag, file, input or setting it is about.
 * Every case is refused before a data directory is opened (or, for a bad data directory or
 * setting, as it is opened), so a case costs milliseconds in process.
 */
import { mkdirSync } from 'node:fs';
import fc from 'fast-check';
import { scratchFolder } from '../support/cli.js';

export const WORKFLOW = 'fuzz.cli.main';

const FLOWS = `import { task, workflow, z } from '@memoflow/sdk';
export const sum = task({ name: 'fuzz.cli.sum', inputs: { n: z.number().int(), rows: z.array(z.number()) }, output: z.number() }, ({ n, rows }) => n + rows.reduce((a, b) => a + b, 0));
export const main = workflow(
  { name: '${WORKFLOW}', inputs: { n: z.number().int(), rows: z.array(z.number()), label: z.string(), flag: z.boolean().optional() } },
  ({ n, rows }) => ({ total: sum({ n, rows }) }),
);
`;

/** The files a case points at, in a scratch folder outside the repository. */
export interface CliFiles {
  dir: string;
  flows: string;
  data: string;
  notJson: string;
  array: string;
  folder: string;
  text: string;
  remove(): void;
}

export function makeCliFiles(): CliFiles {
  const scratch = scratchFolder('fuzz-cli');
  const folder = `${scratch.dir}/a-folder`;
  mkdirSync(folder);
  return {
    dir: scratch.dir,
    flows: scratch.write('flows.ts', FLOWS),
    data: `${scratch.dir}/data`,
    notJson: scratch.write('not-json.json', '{"n": 1,'),
    array: scratch.write('array.json', '[1, 2]'),
    folder,
    text: scratch.write('notes.js', 'not a module, just notes\n'),
    remove: scratch.remove,
  };
}

export interface CliCase {
  what: string;
  args(files: CliFiles): string[];
  env?(files: CliFiles): { [name: string]: string };
  /** What the one error line must contain. */
  names(files: CliFiles): string[];
  /** The flows file fails to load: the message comes from the module loader, which differs in process. */
  loader?: boolean;
}

const GOOD_INPUTS = ['--input', 'n=1', '--input', 'rows=[1,2]', '--input', 'label=a'];
const run = (f: CliFiles, ...extra: string[]) => ['run', f.flows, WORKFLOW, ...GOOD_INPUTS, '--data-dir', f.data, ...extra];

interface NumericFlag {
  command: (f: CliFiles) => string[];
  flag: string;
  min: number;
  max: number;
}
const TIMER_MAX = 2 ** 31 - 1;
const NUMERIC_FLAGS: readonly NumericFlag[] = [
  { command: (f) => run(f), flag: 'concurrency', min: 1, max: Number.MAX_SAFE_INTEGER },
  { command: (f) => ['worker', f.flows], flag: 'concurrency', min: 1, max: Number.MAX_SAFE_INTEGER },
  { command: (f) => ['runs', 'ls', '--data-dir', f.data], flag: 'limit', min: 1, max: Number.MAX_SAFE_INTEGER },
  { command: (f) => ['cache', 'ls', '--data-dir', f.data], flag: 'limit', min: 1, max: Number.MAX_SAFE_INTEGER },
  { command: () => ['controller'], flag: 'stale-after', min: 1, max: TIMER_MAX },
  { command: (f) => ['worker', f.flows], flag: 'lock-duration', min: 1, max: TIMER_MAX },
  { command: (f) => ['worker', f.flows], flag: 'stalled-interval', min: 1, max: TIMER_MAX },
  { command: (f) => ['worker', f.flows], flag: 'max-stalled', min: 0, max: Number.MAX_SAFE_INTEGER },
];

/** What the flag parsers accept (flag-parsers.ts), so a generated value is known to be bad. */
function acceptable(value: string, flag: NumericFlag): boolean {
  const trimmed = value.trim();
  const parsed = /^[+-]?\d+$/.test(trimmed) ? Number(trimmed) : Number.NaN;
  return Number.isSafeInteger(parsed) && parsed >= flag.min && parsed <= flag.max;
}

const numericValue = fc.oneof(
  fc.string({ maxLength: 8 }),
  fc.integer({ min: -1000, max: 0 }).map(String),
  fc.double().map(String),
  fc.constantFrom('1e3', '0x10', '5 x', '', ' ', '+-1', '9007199254740993', '1.0', '١', '-0', '2147483648', 'Infinity', 'NaN', '--', '-5'),
);

const KNOWN_OPTIONS = new Set(['input', 'inputs-file', 'project', 'domain', 'overwrite-cache', 'concurrency', 'data-dir', 'schema', 'json', 'help', 'workflow', 'limit', 'ui']);
const KNOWN_COMMANDS = new Set(['run', 'runs', 'cache', 'worker', 'controller', 'ui', 'plan', 'help']);
const word = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/);
const missing = (f: CliFiles, name: string) => `${f.dir}/missing/${name}`;

const numericFlagCase = fc
  .tuple(fc.constantFrom(...NUMERIC_FLAGS), numericValue, fc.boolean())
  .filter(([flag, value]) => !acceptable(value, flag))
  .map(([flag, value, joined]): CliCase => ({
    what: `--${flag.flag} ${JSON.stringify(value)}`,
    args: (f) => [...flag.command(f), ...(joined ? [`--${flag.flag}=${value}`] : [`--${flag.flag}`, value])],
    names: () => [`--${flag.flag}`],
  }));

const unknownOptionCase = fc
  .tuple(word.filter((name) => !KNOWN_OPTIONS.has(name)), fc.constantFrom<(f: CliFiles) => string[]>((f) => run(f), (f) => ['runs', 'ls', '--data-dir', f.data], (f) => ['cache', 'clear', '--data-dir', f.data]))
  .map(([name, command]): CliCase => ({ what: `unknown option --${name}`, args: (f) => [...command(f), `--${name}`], names: () => [`unknown option '--${name}'`] }));

const unknownCommandCase = fc.oneof(
  word.filter((name) => !KNOWN_COMMANDS.has(name)).map((name): CliCase => ({ what: `unknown command ${name}`, args: () => [name], names: () => [`unknown command '${name}'`] })),
  fc
    .tuple(fc.constantFrom<[string, string[]]>(['runs', ['ls', 'show', 'retry', 'cancel', 'help']], ['cache', ['ls', 'evict', 'clear', 'explain', 'help']]), word)
    .filter(([[, known], name]) => !known.includes(name))
    .map(([[group], name]): CliCase => ({ what: `unknown command ${group} ${name}`, args: () => [group, name], names: () => [`unknown command '${name}'`] })),
);

const missingArgumentCase = fc.constantFrom<CliCase>(
  { what: 'run with no file', args: () => ['run'], names: () => ["missing required argument 'file'"] },
  { what: 'run with no workflow', args: (f) => ['run', f.flows], names: () => ["missing required argument 'workflow'"] },
  { what: 'runs show with no run', args: (f) => ['runs', 'show', '--data-dir', f.data], names: () => ["missing required argument 'run'"] },
  { what: 'cache evict with no --run', args: (f) => ['cache', 'evict', '--data-dir', f.data], names: () => ["required option '--run <id>'"] },
  { what: '--concurrency with no value', args: (f) => [...run(f), '--concurrency'], names: () => ["'--concurrency <n>' argument missing"] },
  { what: '--limit with no value', args: (f) => ['runs', 'ls', '--data-dir', f.data, '--limit'], names: () => ["'--limit <n>' argument missing"] },
  { what: '--inputs-file with no value', args: (f) => [...run(f), '--inputs-file'], names: () => ["'--inputs-file <file>' argument missing"] },
);

const badChoiceCase = fc
  .tuple(fc.oneof(word, fc.constantFrom('', 'Output', 'futures', 'all')).filter((kind) => kind !== 'output' && kind !== 'future'), fc.boolean())
  .map(([kind, evict]): CliCase => ({
    what: `--kind ${JSON.stringify(kind)}`,
    args: (f) => (evict ? ['cache', 'evict', '--run', 'r1', '--kind', kind, '--data-dir', f.data] : ['cache', 'clear', '--kind', kind, '--data-dir', f.data]),
    names: () => ["--kind", 'Allowed choices are output, future'],
  }));

const flowsFileCase = fc.oneof(
  fc.tuple(fc.stringMatching(/^[a-z][a-z0-9_.-]{0,12}$/), fc.constantFrom('run', 'worker')).map(([name, command]): CliCase => ({
    what: `${command} with a missing file ${name}`,
    args: (f) => (command === 'run' ? ['run', missing(f, name), WORKFLOW, '--data-dir', f.data] : ['worker', missing(f, name), '--redis-url', 'redis://127.0.0.1:1']),
    names: (f) => [`no such file: ${missing(f, name)}`],
  })),
  fc.constant<CliCase>({ what: 'a folder as the flows file', args: (f) => ['run', f.folder, WORKFLOW, '--data-dir', f.data], names: (f) => [`${f.folder} is not a file`] }),
  fc.constant<CliCase>({ what: 'not a module as the flows file', args: (f) => ['run', f.text, WORKFLOW, '--data-dir', f.data], names: (f) => ['MODULE_LOAD_FAILED', f.text], loader: true }),
);

const unknownWorkflowCase = fc
  .oneof(fc.string({ maxLength: 20 }), fc.stringMatching(/^[a-z]{1,6}(\.[a-z]{1,6}){0,2}$/))
  .filter((name) => name !== WORKFLOW && !name.startsWith('-'))
  .map((name): CliCase => ({ what: `unknown workflow ${JSON.stringify(name)}`, args: (f) => ['run', f.flows, name, ...GOOD_INPUTS, '--data-dir', f.data], names: () => [`exports no workflow named '${name}'`] }));

/** The good inputs with one pair replaced (or left out, for `undefined`). */
function inputsWith(name: 'n' | 'rows' | 'label', pair: string | undefined): string[] {
  const pairs = { n: 'n=1', rows: 'rows=[1,2]', label: 'label=a' };
  const kept = Object.entries(pairs).map(([input, good]) => (input === name ? pair : good)).filter((p): p is string => p !== undefined);
  return kept.flatMap((p) => ['--input', p]);
}
const inputName = fc.constantFrom<'n' | 'rows' | 'label'>('n', 'rows', 'label');
const runWith = (f: CliFiles, inputs: string[], ...extra: string[]) => ['run', f.flows, WORKFLOW, ...inputs, '--data-dir', f.data, ...extra];

const badInputCase = fc.oneof(
  fc.oneof(fc.stringMatching(/^[a-z]{1,5}$/), fc.constantFrom('=5', '=', '')).map((pair): CliCase => ({ what: `--input ${JSON.stringify(pair)}`, args: (f) => runWith(f, [...GOOD_INPUTS, '--input', pair]), names: () => [`--input '${pair}' must look like name=value`] })),
  fc.oneof(fc.stringMatching(/^[a-z][a-z0-9_]{0,8}$/).filter((name) => !['n', 'rows', 'label', 'flag'].includes(name)), fc.constantFrom('toString', 'constructor', '__proto__', 'hasOwnProperty')).map((name): CliCase => ({
    what: `--input for an unknown input ${name}`,
    args: (f) => runWith(f, [...GOOD_INPUTS, '--input', `${name}=1`]),
    names: () => [`no input '${name}'`],
  })),
  inputName.map((name): CliCase => ({ what: `--input ${name} twice`, args: (f) => runWith(f, [...GOOD_INPUTS, '--input', `${name}=2`]), names: () => ['--input', `'${name}' is given more than once`] })),
  fc.tuple(inputName, fc.constantFrom('[1,', '{"a":', '[', '{', '[1 2]', "{'a':1}", ' [1', '{"rows": [}')).map(([name, raw]): CliCase => ({
    what: `--input ${name}=${raw}`,
    args: (f) => runWith(f, inputsWith(name, `${name}=${raw}`)),
    names: () => [`field '${name}'`, 'looks like JSON but does not parse'],
  })),
  fc
    .constantFrom<[string, string]>(['n', 'abc'], ['n', '1.5'], ['n', 'true'], ['n', '[1]'], ['n', '"1"'], ['n', '1e400'], ['rows', '5'], ['rows', 'abc'], ['rows', '{"a":1}'], ['rows', '[true]'], ['rows', '["1"]'], ['flag', 'maybe'], ['flag', '1'])
    .map(([name, raw]): CliCase => ({
      what: `--input ${name}=${raw} (the wrong type)`,
      args: (f) => runWith(f, [...(name === 'flag' ? GOOD_INPUTS : inputsWith(name as 'n', undefined)), '--input', `${name}=${raw}`]),
      names: () => [`field '${name}`],
    })),
  fc.tuple(inputName, fc.constantFrom<'missing' | 'notJson' | 'folder'>('missing', 'notJson', 'folder')).map(([name, which]): CliCase => ({
    what: `--input ${name}=@${which}`,
    args: (f) => runWith(f, inputsWith(name, `${name}=@${which === 'missing' ? missing(f, 'in.json') : which === 'notJson' ? f.notJson : f.folder}`)),
    names: (f) => [`field '${name}'`, which === 'missing' ? `cannot read ${missing(f, 'in.json')}` : which === 'notJson' ? `${f.notJson} is not JSON` : `cannot read ${f.folder}`],
  })),
  inputName.map((name): CliCase => ({ what: `no --input ${name}`, args: (f) => runWith(f, inputsWith(name, undefined)), names: () => [`field '${name}'`, `input '${name}' is required`] })),
  fc.constantFrom<'missing' | 'notJson' | 'array' | 'folder'>('missing', 'notJson', 'array', 'folder').map((which): CliCase => {
    const path = (f: CliFiles) => (which === 'missing' ? missing(f, 'inputs.json') : which === 'notJson' ? f.notJson : which === 'array' ? f.array : f.folder);
    return { what: `--inputs-file ${which}`, args: (f) => runWith(f, [], '--inputs-file', path(f)), names: (f) => ["field 'inputs-file'", path(f)] };
  }),
);

const settingCase = fc.oneof(
  fc.constantFrom<(f: CliFiles) => string>((f) => f.text, (f) => `${f.text}/below`, () => '/proc/memoflow-fuzz').map((dataDir): CliCase => ({
    what: '--data-dir that cannot be a data directory',
    args: (f) => [...run(f).slice(0, -2), '--data-dir', dataDir(f)],
    names: (f) => ['--data-dir', dataDir(f)],
  })),
  fc.constantFrom('not a url', 'postgres//host/db', '://', 'http://127.0.0.1:1/db', 'mysql://127.0.0.1/db').map((url): CliCase => ({ what: `DATABASE_URL=${url}`, args: (f) => run(f), env: () => ({ DATABASE_URL: url }), names: () => ['DATABASE_URL'] })),
  fc.constant<CliCase>({ what: 'an unreachable DATABASE_URL', args: (f) => run(f), env: () => ({ DATABASE_URL: 'postgres://postgres@127.0.0.1:1/postgres' }), names: () => ['DATABASE_URL', 'ECONNREFUSED'] }),
  fc.constantFrom('localhost:6379', 'not a url', 'http://127.0.0.1:6379').map((url): CliCase => ({
    what: `REDIS_URL=${url}`,
    args: (f) => run(f),
    env: () => ({ DATABASE_URL: 'postgres://postgres@127.0.0.1:1/postgres', REDIS_URL: url }),
    names: () => ['REDIS_URL'],
  })),
  fc.constant<CliCase>({ what: 'REDIS_URL without DATABASE_URL', args: (f) => run(f), env: () => ({ REDIS_URL: 'redis://127.0.0.1:1' }), names: () => ['DATABASE_URL'] }),
  fc.constant<CliCase>({ what: 'worker without Redis', args: (f) => ['worker', f.flows], names: () => ['REDIS_URL'] }),
);

/** One mistake per command line; weighted so the common mistakes come up most. */
export const cliMistake: fc.Arbitrary<CliCase> = fc.oneof(
  { arbitrary: numericFlagCase, weight: 4 },
  { arbitrary: unknownOptionCase, weight: 2 },
  { arbitrary: unknownCommandCase, weight: 1 },
  { arbitrary: missingArgumentCase, weight: 1 },
  { arbitrary: badChoiceCase, weight: 1 },
  { arbitrary: flowsFileCase, weight: 1 },
  { arbitrary: unknownWorkflowCase, weight: 2 },
  { arbitrary: badInputCase, weight: 5 },
  { arbitrary: settingCase, weight: 1 },
);
