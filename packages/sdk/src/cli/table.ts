/** Prints rows as aligned columns (what `runs ls`, `runs show` and `cache ls` show). */
export function printTable(headers: readonly string[], rows: readonly (readonly string[])[], stream: NodeJS.WritableStream = process.stdout): void {
  const widths = headers.map((header, i) => rows.reduce((widest, row) => Math.max(widest, (row[i] ?? '').length), header.length));
  const line = (cells: readonly string[]) => cells.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  stream.write(`${line(headers)}\n`);
  for (const row of rows) stream.write(`${line(row)}\n`);
  if (rows.length === 0) stream.write('(none)\n');
}
