import type { Json } from '@memoflow/engine';

/** At most this many characters of a value reach the page by default. */
export const PREVIEW_CHARS = 4_000;

export interface Preview {
  /** The start of `JSON.stringify(value, null, 2)`, at most `maxChars` characters. */
  text: string;
  /** True when `text` is not all of it. */
  truncated: boolean;
}

/**
 * The start of a value's pretty JSON without building all of it: a 50 MB output costs as much as
 * its first `maxChars` characters, so a node's panel opens at once whatever the node returned.
 * The text is always a prefix of `JSON.stringify(value, null, 2)` (the property test pins that).
 */
export function previewJson(value: Json, maxChars: number = PREVIEW_CHARS): Preview {
  const out = new BoundedText(maxChars);
  try {
    emit(value, '', out);
  } catch (error) {
    if (error !== FULL) throw error;
  }
  return { text: out.text(), truncated: out.overflowed };
}

/** Thrown (one instance, made once) to stop the walk when the text is full. */
const FULL = new Error('preview full');

class BoundedText {
  private readonly parts: string[] = [];
  private length = 0;
  overflowed = false;

  constructor(private readonly max: number) {}

  /** Appends `chunk`, or as much of it as fits, then stops the walk by throwing FULL. */
  push(chunk: string): void {
    const room = this.max - this.length;
    if (chunk.length <= room) {
      this.parts.push(chunk);
      this.length += chunk.length;
      return;
    }
    this.parts.push(chunk.slice(0, room));
    this.length = this.max;
    this.overflowed = true;
    throw FULL;
  }

  room(): number {
    return this.max - this.length;
  }

  text(): string {
    return this.parts.join('');
  }
}

function emit(value: Json, indent: string, out: BoundedText): void {
  if (value === null || typeof value === 'boolean' || typeof value === 'number') {
    out.push(JSON.stringify(value));
    return;
  }
  if (typeof value === 'string') {
    out.push(boundedString(value, out.room()));
    return;
  }
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.length === 0) return out.push('[]');
    out.push('[\n');
    value.forEach((item, index) => {
      out.push(inner);
      emit(item, inner, out);
      out.push(index === value.length - 1 ? '\n' : ',\n');
    });
    out.push(`${indent}]`);
    return;
  }
  // JSON.stringify's order: own enumerable string keys, as Object.keys gives them.
  const keys = Object.keys(value);
  if (keys.length === 0) return out.push('{}');
  out.push('{\n');
  keys.forEach((key, index) => {
    out.push(`${inner}${boundedString(key, out.room())}: `);
    emit(value[key] as Json, inner, out);
    out.push(index === keys.length - 1 ? '\n' : ',\n');
  });
  out.push(`${indent}}`);
}

/**
 * A string's JSON encoding, or enough of its start to fill `room`: escaping only lengthens, so the
 * first room + 2 characters encode to at least room characters; cutting there never splits a
 * surrogate pair inside the part that is kept (a lone half at the cut encodes past the room).
 */
function boundedString(text: string, room: number): string {
  if (text.length <= room) return JSON.stringify(text);
  return JSON.stringify(text.slice(0, room + 2)).slice(0, -1);
}
