import { safeErrorText } from '../client/error-text.js';

/** System error codes that mean "a setting points at something unusable", not a memoflow bug. */
const SETTING_PROBLEMS = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EACCES', 'EPERM', 'ENOTDIR', 'EISDIR', 'ENOENT', 'EROFS', 'EEXIST', 'ENOSPC', 'ERR_INVALID_URL']);

/**
 * The last line of defence of the CLI: an error that is not a MemoflowError still ends in one line,
 * never a stack trace (MEMOFLOW_DEBUG=1 prints the stack too). A system error from a setting
 * (refused connection, unusable path) exits 2 like any user mistake; anything else is a memoflow
 * bug and exits 1.
 */
export function describeUnexpected(error: unknown): { line: string; exitCode: number } {
  const text = safeErrorText(error);
  const debug = process.env['MEMOFLOW_DEBUG'] !== undefined && process.env['MEMOFLOW_DEBUG'] !== '';
  const stack = debug && error instanceof Error ? `\n${String(error.stack)}` : '';
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && SETTING_PROBLEMS.has(code)) return { line: `memoflow: ${text}${stack}`, exitCode: 2 };
  return { line: `memoflow: unexpected error: ${text} (set MEMOFLOW_DEBUG=1 to see where)${stack}`, exitCode: 1 };
}
