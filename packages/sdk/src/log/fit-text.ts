import cliTruncate from 'cli-truncate';
import stringWidth from 'string-width';

/**
 * Cuts text to at most `width` terminal columns (CJK and most emoji are two wide), with an
 * ellipsis where it was cut: at the end, or in the middle, which keeps both ends of an id.
 */
export function fitText(text: string, width: number, position: 'end' | 'middle'): string {
  if (width <= 0) return '';
  if (textWidth(text) <= width) return text;
  const cut = cliTruncate(text, width, { position });
  // cli-truncate can keep a wide character that straddles the edge; never let it through.
  return stringWidth(cut) <= width ? cut : cliTruncate(text, Math.max(1, width - 1), { position });
}

/** Terminal columns of text; printable ASCII (most ids and notes) and the tree's symbols are measured without segmenting. */
export function textWidth(text: string): number {
  return ONE_COLUMN_TEXT.test(text) ? text.length : stringWidth(text);
}

/** Printable ASCII and the one-column symbols the tree and lines draw with (box drawing, …, ←, ·). */
const ONE_COLUMN_TEXT = /^[\x20-\x7e│├└─…←·]*$/;

/** Pads text with spaces to `width` terminal columns (`visible`: its width, when known). */
export function padTo(text: string, width: number, visible = textWidth(text)): string {
  return visible >= width ? text : text + ' '.repeat(width - visible);
}

/** Control characters (a newline in an id or an error message) would break a row: shown as spaces. */
export function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/ *[\u0000-\u001f\u007f-\u009f]+ */g, ' ');
}
