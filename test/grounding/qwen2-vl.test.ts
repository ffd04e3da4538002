// Qwen2-VL: <|object_ref_start|>label<|object_ref_end|><|box_start|>(x1,y1),(x2,y2)<|box_end|> on a
// 0–1000 grid. The markers are special tokens: ChatResult.text drops them, so chat() reads the
// generated ids with them put back (textWithSpecialTokens); checked here with the real tokenizer.
import { beforeAll, describe, expect, it } from 'vitest';
import { parseGrounding } from '../../lib/index.js';
import { textWithSpecialTokens } from '../../lib/grounding/reply-text.js';
import { QwenTokenizer } from '../../lib/text/tokenizer.js';
import { checkpointDir } from '../helpers/fixtures.js';
import { BUDGETS, SIZES, boxIn, imageUnder, toRelative } from './helpers.js';

const family = 'qwen2-vl';
const ref = (label: string) => `<|object_ref_start|>${label}<|object_ref_end|>`;
const box = (b: number[]) => `<|box_start|>(${b[0]},${b[1]}),(${b[2]},${b[3]})<|box_end|>`;

describe('Qwen2-VL grounding (special tokens, 0–1000)', () => {
  it.each(SIZES)('a box of a %ix%i image maps back whatever the budget', (w, h) => {
    const truth = boxIn(w, h);
    for (const budget of BUDGETS) {
      const img = imageUnder(w, h, budget);
      const r = parseGrounding(`The ${ref('thing')}${box(toRelative(truth, img))} is here.`, { family, images: [img] });
      expect(r.warnings).toEqual([]);
      expect(r.items[0].label).toBe('thing');
      r.items[0].box!.forEach((v, i) => expect(Math.abs(v - truth[i])).toBeLessThanOrEqual(0.5 * ((i % 2 ? h : w) / 1000) + 1e-9));
    }
  });

  it('boxes in a row share their reference; a box after other text has none; one pair is a point', () => {
    const images = [{ originalWidth: 1000, originalHeight: 37 }];
    const reply = `${ref('two cats')}${box([0, 0, 100, 1000])}, ${box([900, 1000, 800, 0])} and then ${box([10, 10, 20, 20])} ` +
      `and ${ref('a dot')}<|box_start|>(500,500)<|box_end|>`;
    const r = parseGrounding(reply, { family, images });
    expect(r.items).toEqual([
      { label: 'two cats', box: [0, 0, 100, 37], image: 0 },
      { label: 'two cats', box: [800, 0, 900, 37], image: 0 },
      { box: [10, 0.37, 20, 0.74], image: 0 },
      { label: 'a dot', point: [500, 18.5], image: 0 },
    ]);
  });

  it('truncated, malformed, quads and clamping: what parses, with warnings', () => {
    const images = [{ originalWidth: 333, originalHeight: 517 }];
    const reply = `${ref('ok')}${box([0, 0, 1000, 1000])}<|box_start|>(1,2,3)<|box_end|><|quad_start|>(1,2),(3,4),(5,6),(7,8)<|quad_end|>` +
      `${ref('far')}${box([-50, 0, 1200, 500])}${ref('cut')}<|box_start|>(100,2`;
    const r = parseGrounding(reply, { family, images });
    expect(r.items).toEqual([
      { label: 'ok', box: [0, 0, 333, 517], image: 0 },
      { label: 'far', box: [0, 0, 333, 258.5], image: 0 },
    ]);
    // What could not be read, then what was changed on the image.
    expect(r.warnings).toEqual([
      expect.stringMatching(/3 numbers/),
      expect.stringMatching(/quad/),
      expect.stringMatching(/cut off/),
      expect.stringMatching(/clamped/),
    ]);
  });

  it('the markers are gone from a skipSpecialTokens decode: such text has no boxes', () => {
    const images = [{ originalWidth: 100, originalHeight: 100 }];
    expect(parseGrounding('the dog(100,200),(300,400)', { family, images }).items).toEqual([]);
  });

  describe('the reply as chat() reads it (generated ids with their special tokens)', () => {
    let tok: QwenTokenizer;
    beforeAll(async () => {
      tok = await QwenTokenizer.load(checkpointDir('qwen2-vl'));
    });

    it('puts the markers back into the visible text, up to where the text ends', () => {
      const raw = `Found ${ref('a dog')}${box([100, 200, 300, 400])} here.`;
      const ids = [...tok.encode(raw), tok.tokenToId('<|im_end|>')!];
      const text = tok.decode(ids, { skipSpecialTokens: true });
      expect(text).toBe('Found a dog(100,200),(300,400) here.');
      expect(textWithSpecialTokens(tok, ids, text)).toBe(`${raw}<|im_end|>`);
      const images = [{ originalWidth: 1000, originalHeight: 500 }];
      expect(parseGrounding(textWithSpecialTokens(tok, ids, text), { family, images }).items).toEqual([
        { label: 'a dog', box: [100, 100, 300, 200], image: 0 },
      ]);
    });

    it('a stop string that ends the text inside a token cuts there, keeping the markers before it', () => {
      const raw = `${ref('cat')}${box([1, 2, 3, 4])}STOPPED and ${box([5, 6, 7, 8])}`;
      const ids = tok.encode(raw);
      const full = tok.decode(ids, { skipSpecialTokens: true });
      const text = full.slice(0, full.indexOf('STOP') + 2); // ends inside a token ("ST")
      const got = textWithSpecialTokens(tok, ids, text);
      expect(got).toBe(`${ref('cat')}${box([1, 2, 3, 4])}ST`);
      expect(textWithSpecialTokens(tok, ids, '')).toBe('<|object_ref_start|>');
      // Text that is not a decode of the ids: grounding reads the text as it is.
      expect(textWithSpecialTokens(tok, ids, 'something else')).toBe('something else');
    });
  });
});
