/**
 * One line that says why something failed, for warnings and CLI errors. Database drivers put the
 * whole SQL statement and its parameters in `message` (drizzle: "Failed query: <sql> params: ...")
 * and the reason in `cause` or `code` (postgres.js CONNECTION_CLOSED, Node's ECONNREFUSED); this
 * digs out the deepest cause and its code, drops SQL and parameters, and truncates. Never throws,
 * whatever was thrown (a getter that throws, a cycle, a BigInt).
 */
export function safeErrorText(error: unknown, maxLength = 300): string {
  try {
    const chain = causeChain(error);
    const deepest = chain[chain.length - 1];
    const code = chain.map(codeOf).find((c) => c !== undefined);
    let message = deepest === undefined ? '' : messageOf(deepest);
    if (message === '' || /^Failed query:/i.test(message)) message = chain.map(messageOf).find((m) => m !== '' && !/^Failed query:/i.test(m)) ?? '';
    if (message === '' && chain.length > 0) message = summariseQuery(messageOf(chain[0]));
    const withCode = code !== undefined && !message.includes(code) ? `${code}: ${message}` : message;
    const line = withCode.replace(/\s*\n\s*/g, ' ').trim();
    return line.length > maxLength ? `${line.slice(0, maxLength)}…` : line || 'unknown error';
  } catch {
    return 'an error that cannot be printed';
  }
}

function causeChain(error: unknown): unknown[] {
  const chain: unknown[] = [];
  let current: unknown = error;
  while (current !== undefined && current !== null && chain.length < 8 && !chain.includes(current)) {
    chain.push(current);
    try {
      current = typeof current === 'object' ? (current as { cause?: unknown }).cause : undefined;
    } catch {
      current = undefined;
    }
  }
  return chain;
}

function codeOf(error: unknown): string | undefined {
  try {
    const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
    return typeof code === 'string' && code !== '' ? code : undefined;
  } catch {
    return undefined;
  }
}

function messageOf(error: unknown): string {
  try {
    if (error instanceof Error) return String(error.message);
    if (typeof error === 'string') return error;
    if (typeof error === 'object' && error !== null && typeof (error as { message?: unknown }).message === 'string') return (error as { message: string }).message;
    return String(error);
  } catch {
    return '';
  }
}

/** "Failed query: insert into ... params: ..." without anything else to go on: keep its verb and table. */
function summariseQuery(message: string): string {
  const sql = message.replace(/^Failed query:\s*/i, '').replace(/\s*params:[\s\S]*$/i, '');
  const head = /^\s*(\w+)(?:\s+into|\s+from)?\s+("?[\w.]+"?(?:\."?\w+"?)?)/i.exec(sql.replace(/^\s*with\s[\s\S]*?\)\s*(?=select|insert|update|delete)/i, ''));
  return head === null ? 'a database query failed' : `${head[1]?.toLowerCase()} ${head[2]} failed`;
}
