/**
 * The lines of a JSON Lines file, streamed (a line may be megabytes; the file is never held whole).
 * @internal
 * @module
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';

/** Yields the non-blank lines of a file with their 1-based numbers ("\n" or "\r\n" endings). @internal */
export async function* fileLines(path: string): AsyncGenerator<{ text: string; line: number }> {
  const lines = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  let n = 0;
  try {
    for await (const raw of lines) {
      n++;
      // A byte order mark (some editors write one) is not part of the first line's JSON.
      const text = n === 1 && raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw;
      if (text.trim().length > 0) yield { text, line: n };
    }
  } finally {
    lines.close();
  }
}
