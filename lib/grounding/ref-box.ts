/**
 * Boxes in Qwen2-VL's special-token form:
 * `<|object_ref_start|>the dog<|object_ref_end|><|box_start|>(x1,y1),(x2,y2)<|box_end|>`.
 * A box takes the label of the reference just before it (several boxes in a row share it); a box
 * holding one `(x,y)` pair is read as a point. Quadrilaterals (`<|quad_start|>…<|quad_end|>`) have
 * tokens but no documented output form, so they are reported and left out.
 *
 * These markers are special tokens: a reply decoded with `skipSpecialTokens` (what
 * `ChatResult.text` is) has lost them, so grounding reads a decode that keeps them (see
 * reply-text.ts).
 * @internal
 * @module
 */
import type { RawGrounding } from './types.js';

const MARK = /<\|(object_ref_start|box_start|quad_start)\|>/g;
const END = { object_ref_start: '<|object_ref_end|>', box_start: '<|box_end|>', quad_start: '<|quad_end|>' } as const;
const NUMBER = /-?\d+(?:\.\d+)?/g;
/** What may stand between a reference and its box, or between two boxes of one reference. */
const JOINER = /^[\s,;]*$/;

/** Every token-form box and point of `text`, in order, with their coordinates as written. */
export function refBoxGrounding(text: string, warnings: string[]): RawGrounding[] {
  const out: RawGrounding[] = [];
  let label: string | undefined;
  let labelEnd = -1;
  MARK.lastIndex = 0;
  for (let m = MARK.exec(text); m !== null; m = MARK.exec(text)) {
    const kind = m[1] as keyof typeof END;
    const open = m.index + m[0].length;
    const close = text.indexOf(END[kind], open);
    if (close < 0) {
      if (kind !== 'object_ref_start') warnings.push(`offset ${m.index}: a ${kind === 'box_start' ? 'box' : 'quad'} cut off before its end (truncated reply?) was left out`);
      break;
    }
    const end = close + END[kind].length;
    MARK.lastIndex = end;
    if (kind === 'object_ref_start') {
      label = text.slice(open, close).trim();
      labelEnd = end;
      continue;
    }
    const own = label !== undefined && JOINER.test(text.slice(labelEnd, m.index)) ? label : undefined;
    label = own;
    labelEnd = end;
    if (kind === 'quad_start') {
      warnings.push(`offset ${m.index}: quadrilaterals (<|quad_start|>) have no documented form; left out`);
      continue;
    }
    const values = (text.slice(open, close).match(NUMBER) ?? []).map(Number);
    const base = { offset: m.index, ...(own !== undefined ? { label: own } : {}) };
    if (values.length === 4) out.push({ ...base, box: values });
    else if (values.length === 2) out.push({ ...base, point: values });
    else warnings.push(`offset ${m.index}: a box of ${values.length} numbers (expected (x1,y1),(x2,y2)); left out`);
  }
  return out;
}
