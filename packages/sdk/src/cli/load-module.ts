import { readFileSync, statSync } from 'node:fs';
import { register as registerHook } from 'node:module';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parse as parseJs } from 'acorn';
import { register } from 'tsx/esm/api';
import { MemoflowError } from '@memoflow/engine';
import { isTaskDefinition, type AnyTask } from '../define/task.js';
import { isWorkflowDefinition, type AnyWorkflow } from '../define/workflow.js';

let registered = false;

export interface UserModule {
  path: string;
  workflows: Map<string, AnyWorkflow>;
  tasks: Map<string, AnyTask>;
}

/**
 * Imports a user's flows module (TypeScript or JavaScript, ESM or CommonJS, whatever its folder's
 * package.json says) and collects the workflows and tasks it exports, by their names. TypeScript is
 * loaded through tsx's loader, registered once, so the module shares this process's copy of
 * @memoflow/sdk; module-format-hook.ts, registered after it, picks the format from the file's syntax
 * where the folder's package.json would pick the wrong one.
 * Every way the file can fail to load (missing, a directory, a syntax error, a throw at import, a
 * missing import) is a MemoflowError MODULE_LOAD_FAILED naming the file (and line:col where known).
 */
export async function loadUserModule(file: string): Promise<UserModule> {
  const path = resolve(file);
  const stats = statOrUndefined(path);
  if (stats === undefined) throw new MemoflowError('MODULE_LOAD_FAILED', `no such file: ${file}`, { field: 'file' });
  if (!stats.isFile()) throw new MemoflowError('MODULE_LOAD_FAILED', `${file} is not a file (a directory?): give the flows module itself, e.g. ./flows.ts`, { field: 'file' });
  if (!registered) {
    register();
    registerHook('./module-format-hook.js', import.meta.url);
    registered = true;
  }
  let exports: { [name: string]: unknown };
  try {
    exports = (await import(pathToFileURL(path).href)) as { [name: string]: unknown };
  } catch (error) {
    throw new MemoflowError('MODULE_LOAD_FAILED', describeLoadFailure(file, path, error), { field: 'file', cause: error });
  }
  const workflows = new Map<string, AnyWorkflow>();
  const tasks = new Map<string, AnyTask>();
  // A CommonJS module's `module.exports` arrives as the default export; its members count too.
  const fromDefault: unknown[] = typeof exports['default'] === 'object' && exports['default'] !== null ? Object.values(exports['default']) : [];
  for (const value of [...Object.values(exports), ...fromDefault]) {
    if (isWorkflowDefinition(value)) workflows.set(value.workflowName, value);
    else if (isTaskDefinition(value)) tasks.set(value.taskName, value);
  }
  return { path, workflows, tasks };
}

function statOrUndefined(path: string): ReturnType<typeof statSync> | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/** One line: what went wrong loading the file, with file:line:col when the error says where. */
export function describeLoadFailure(file: string, path: string, error: unknown): string {
  const message = firstLine(safeMessage(error));
  const name = safeName(error);
  // esbuild (TypeScript through tsx): "Transform failed with 1 error:\n/abs/flows.ts:3:7: ERROR: ..."
  const esbuild = /^(.*?):(\d+):(\d+): ERROR: (.*)$/m.exec(safeMessage(error));
  if (esbuild !== null) return `syntax error in ${esbuild[1] ?? file}:${esbuild[2]}:${esbuild[3]}: ${esbuild[4]}`;
  if (name === 'SyntaxError') {
    const where = syntaxErrorLocation(path, error);
    return `syntax error in ${where ?? file}: ${message}`;
  }
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND' || code === 'ERR_UNSUPPORTED_DIR_IMPORT') {
    return `${file} could not be loaded: ${message}`;
  }
  const frame = userFrame(path, error);
  return `${file} threw while it was imported: ${name === 'Error' ? '' : `${name}: `}${message}${frame === undefined ? '' : ` (at ${frame})`}`;
}

/** Node's ESM SyntaxError has no location in its message; parse JavaScript again to find it. */
function syntaxErrorLocation(path: string, error: unknown): string | undefined {
  const ext = extname(path);
  if (ext === '.js' || ext === '.mjs' || ext === '.cjs') {
    try {
      const text = readFileSync(path, 'utf8');
      // Parsed both ways: the error that got further into the file is the real one (a module's
      // `export` is an error at 1:1 for a script, a script's `with` one for a module).
      let furthest: { pos: number; line: number; column: number } | undefined;
      for (const sourceType of ['module', 'script'] as const) {
        try {
          parseJs(text, { ecmaVersion: 'latest', sourceType, allowHashBang: true, allowReturnOutsideFunction: sourceType === 'script', locations: true });
          furthest = undefined; // it parses: acorn cannot say where V8 disagrees
          break;
        } catch (parseError) {
          const { pos, loc } = parseError as { pos?: number; loc?: { line: number; column: number } };
          if (pos !== undefined && loc !== undefined && (furthest === undefined || pos > furthest.pos)) furthest = { pos, ...loc };
        }
      }
      if (furthest !== undefined) return `${path}:${furthest.line}:${furthest.column + 1}`;
    } catch {
      // unreadable: fall back to what the stack says
    }
  }
  // CommonJS SyntaxErrors start their stack with "/abs/file.cjs:2".
  const stack = safeStack(error);
  const at = new RegExp(`^(${escapeRegExp(path)}):(\\d+)`, 'm').exec(stack);
  return at === null ? undefined : `${at[1]}:${at[2]}`;
}

function userFrame(path: string, error: unknown): string | undefined {
  const match = new RegExp(`(${escapeRegExp(path)}|${escapeRegExp(pathToFileURL(path).href)}):(\\d+):(\\d+)`).exec(safeStack(error));
  return match === null ? undefined : `${path}:${match[2]}:${match[3]}`;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function firstLine(text: string): string {
  const line = text.split('\n').find((l) => l.trim() !== '') ?? '';
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}

function safeMessage(error: unknown): string {
  try {
    if (error instanceof Error) return String(error.message);
    return String(error);
  } catch {
    return 'an unprintable value';
  }
}

function safeName(error: unknown): string {
  try {
    return error instanceof Error ? String(error.name) : typeof error;
  } catch {
    return 'Error';
  }
}

function safeStack(error: unknown): string {
  try {
    return error instanceof Error ? String(error.stack ?? '') : '';
  } catch {
    return '';
  }
}

export function pickWorkflow(module: UserModule, name: string): AnyWorkflow {
  const found = module.workflows.get(name);
  if (found !== undefined) return found;
  const known = [...module.workflows.keys()].sort();
  throw new MemoflowError(
    'UNKNOWN_WORKFLOW',
    `${module.path} exports no workflow named '${name}' (${known.length === 0 ? 'it exports no workflows' : `workflows: ${known.join(', ')}`})`,
    { workflow: name },
  );
}
