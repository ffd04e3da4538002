/**
 * Duplicate-key detection for JSON text. `JSON.parse` silently keeps the last of two equal
 * keys; in a checkpoint header that would hide a second tensor of the same name, so the raw
 * text is scanned as well.
 * @internal
 * @module
 */

/** Where a duplicate key was found: the keys of the enclosing objects, outermost first. */
export interface DuplicateKey {
  /** Keys leading to the object holding the duplicate (`[]` for the top-level object). */
  path: string[];
  key: string;
}

interface Frame {
  keys: Set<string> | null; // null for arrays
  lastKey: string;
}

/**
 * Finds the first key that occurs twice in one object, at any depth. `text` must already be
 * valid JSON (call `JSON.parse` first); the scanner only tracks strings and nesting.
 */
export function findDuplicateKey(text: string): DuplicateKey | undefined {
  const stack: Frame[] = [];
  let expectKey = false;
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const end = stringEnd(text, i);
      const top = stack[stack.length - 1];
      if (expectKey && top !== undefined && top.keys !== null) {
        const raw = text.slice(i + 1, end - 1);
        // Escapes are decoded so that "a" and "\u0061" count as the same key.
        const key = raw.includes('\\') ? (JSON.parse(text.slice(i, end)) as string) : raw;
        if (top.keys.has(key)) {
          return { path: stack.slice(0, -1).map((f) => (f.keys === null ? '[]' : f.lastKey)), key };
        }
        top.keys.add(key);
        top.lastKey = key;
        expectKey = false;
      }
      i = end;
      continue;
    }
    switch (c) {
      case 0x7b /* { */:
        stack.push({ keys: new Set(), lastKey: '' });
        expectKey = true;
        break;
      case 0x5b /* [ */:
        stack.push({ keys: null, lastKey: '' });
        expectKey = false;
        break;
      case 0x7d /* } */:
      case 0x5d /* ] */:
        stack.pop();
        expectKey = false;
        break;
      case 0x2c /* , */: {
        const top = stack[stack.length - 1];
        expectKey = top !== undefined && top.keys !== null;
        break;
      }
      default:
        break;
    }
    i++;
  }
  return undefined;
}

/** Index just past the closing quote of the string starting at `start`. */
function stringEnd(text: string, start: number): number {
  let j = start + 1;
  while (j < text.length) {
    const c = text.charCodeAt(j);
    if (c === 0x5c /* \ */) j += 2;
    else if (c === 0x22) return j + 1;
    else j++;
  }
  return text.length;
}
