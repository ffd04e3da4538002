/**
 * The `grammar` benchmark: structured output's per-token mask time at the real Qwen vocabulary
 * (151,936 ids, 151,643 of them text), while real JSON documents of a few schemas are fed through the
 * matcher token by token, as our tokenizer splits them: the mask before each token is timed, then the
 * token is checked allowed and advances the matcher (the work a constrained generation step adds).
 *
 * Per schema: the first mask of a fresh grammar (cold caches), the first document on fresh caches
 * (every stack top met for the first time pays a trie walk), then other documents of the same schema
 * and a repeat (warm: the caches a grammar keeps across requests), the trie walk without caches, and
 * the reference (every token simulated) at a few states as the baseline ratio. Target: <= 1 ms per
 * token. Times include the N-API call and the mask's copy to JS. Other processes share the cores:
 * the warm pass is repeated and its spread printed. First, the vocabulary index: its build time, and
 * built as a model builds it (token bytes in slices, the trie on a worker) the event loop's longest stall.
 * @module
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { median } from '../lib/bench/shares.js';
import { native, type NativeHandle } from '../lib/native/binding.js';
import { flattenGrammar } from '../lib/structured/flatten-grammar.js';
import { compileJsonSchema } from '../lib/structured/json-schema.js';
import { QwenTokenizer } from '../lib/text/tokenizer.js';
import { longestStall } from '../test/helpers/event-loop-stall.js';
import { checkpointDir, EXTERNAL_FIXTURES, materializeTokenizers } from '../test/helpers/fixtures.js';

const VOCAB = 151936;
const REFERENCE_STATES = 5;
const WARM_REPEATS = 3;

interface Case {
  name: string;
  schema: object;
  /** Documents valid against the schema, members in the schema's order. */
  docs: unknown[];
}

const CASES: Case[] = [
  {
    name: 'person',
    schema: {
      type: 'object',
      properties: {
        name: { type: 'string', maxLength: 60 },
        age: { type: 'integer', minimum: 0, maximum: 150 },
        email: { type: 'string', format: 'email' },
        tags: { type: 'array', items: { type: 'string' }, maxItems: 8 },
        address: {
          type: 'object',
          properties: { street: { type: 'string' }, city: { type: 'string' }, country: { enum: ['UK', 'FR', 'DE', 'US', 'JP'] } },
          required: ['street', 'city', 'country'],
          additionalProperties: false,
        },
      },
      required: ['name', 'age', 'address'],
      additionalProperties: false,
    },
    docs: [
      { name: 'Ada Lovelace', age: 36, email: 'ada@analytical.engine.org', tags: ['mathematics', 'poetry', 'computing'], address: { street: "12 St James's Square", city: 'London', country: 'UK' } },
      { name: 'Émilie du Châtelet', age: 42, tags: ['physics', 'translation of the Principia'], address: { street: 'Rue de Cirey 3', city: 'Cirey-sur-Blaise', country: 'FR' } },
      { name: '葛饰北斋', age: 88, email: 'hokusai@edo.jp', address: { street: '本所割下水', city: '江戸', country: 'JP' } },
    ],
  },
  {
    name: 'invoice',
    schema: {
      type: 'object',
      properties: {
        id: { type: 'string', pattern: '^INV-[0-9]{4}$' },
        currency: { enum: ['EUR', 'USD', 'GBP'] },
        items: {
          type: 'array',
          minItems: 1,
          items: {
            type: 'object',
            properties: { description: { type: 'string' }, quantity: { type: 'integer', minimum: 1 }, unitPrice: { type: 'number' } },
            required: ['description', 'quantity', 'unitPrice'],
            additionalProperties: false,
          },
        },
        total: { type: 'number' },
        paid: { type: 'boolean' },
        notes: { type: ['string', 'null'] },
      },
      required: ['id', 'currency', 'items', 'total', 'paid', 'notes'],
      additionalProperties: false,
    },
    docs: [
      {
        id: 'INV-0042', currency: 'EUR',
        items: [{ description: 'Espresso machine, stainless steel', quantity: 1, unitPrice: 349.9 }, { description: 'Coffee beans (1 kg, single origin)', quantity: 3, unitPrice: 24.5 }],
        total: 423.4, paid: false, notes: 'Deliver to the back entrance; ring twice.',
      },
      { id: 'INV-1999', currency: 'USD', items: [{ description: 'Consulting, October', quantity: 12, unitPrice: 150 }], total: 1800, paid: true, notes: null },
      {
        id: 'INV-0007', currency: 'GBP',
        items: [{ description: 'Tea', quantity: 10, unitPrice: 3.25 }, { description: 'Scones', quantity: 24, unitPrice: 1.1 }, { description: 'Clotted cream', quantity: 4, unitPrice: 2.75 }],
        total: 69.9, paid: true, notes: 'Thank you!',
      },
    ],
  },
  {
    name: 'events',
    schema: {
      type: 'object',
      properties: {
        events: {
          type: 'array',
          maxItems: 10,
          items: {
            type: 'object',
            properties: {
              title: { type: 'string', minLength: 1, maxLength: 80 },
              when: { type: 'string', format: 'date' },
              where: { anyOf: [{ type: 'string' }, { type: 'object', properties: { lat: { type: 'number' }, lon: { type: 'number' } }, required: ['lat', 'lon'], additionalProperties: false }] },
              attendees: { type: 'integer', minimum: 0 },
            },
            required: ['title', 'when', 'where'],
            additionalProperties: false,
          },
        },
      },
      required: ['events'],
      additionalProperties: false,
    },
    docs: [
      {
        events: [
          { title: 'Team offsite', when: '2026-03-14', where: 'Lake Como, Villa Carlotta', attendees: 23 },
          { title: 'Product launch', when: '2026-05-02', where: { lat: 37.7749, lon: -122.4194 }, attendees: 350 },
        ],
      },
      { events: [{ title: 'Dentist', when: '2026-01-09', where: 'Dr. Müller, Hauptstraße 5' }] },
      { events: [] },
    ],
  },
];

// Wide grammars: many live alternatives at once (a long enum, an object with many optional properties).
const ENUM_VALUES = Array.from({ length: 3000 }, (_, i) => `item-${i.toString(36)}-${(i * 7919) % 1000}`);
const MANY_PROPERTIES = Object.fromEntries(Array.from({ length: 400 }, (_, i) => [`field_${i}`, { type: i % 2 ? 'integer' : 'string' }]));
CASES.push(
  { name: 'enum3000', schema: { type: 'array', items: { enum: ENUM_VALUES }, maxItems: 5 }, docs: [[ENUM_VALUES[1234], ENUM_VALUES[7]], [ENUM_VALUES[2999]], []] },
  {
    name: 'props400',
    schema: { type: 'object', properties: MANY_PROPERTIES, additionalProperties: false },
    docs: [{ field_3: 5, field_100: 'hundred', field_399: 7 }, { field_0: 'zero', field_1: 1 }, {}],
  },
);

function tokenizerDir(): string {
  const external = join(EXTERNAL_FIXTURES, 'qwen2-vl', 'checkpoint');
  if (existsSync(join(external, 'tokenizer.json'))) return external;
  materializeTokenizers();
  return checkpointDir('qwen2-vl');
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];
const ms = (x: number) => (x < 0.1 ? x.toFixed(4) : x < 10 ? x.toFixed(3) : x.toFixed(1));

/** Feeds `ids` through a fresh matcher, timing the mask before each token (one N-API call). */
function feed(masks: NativeHandle, ids: number[], variant?: string, cache = true): number[] {
  const m = native.grammarMatcher(masks);
  const times: number[] = [];
  try {
    for (const id of ids) {
      const t0 = performance.now();
      const mask = native.matcherMask(m, variant, cache);
      times.push(performance.now() - t0);
      if (((mask[id >> 5] >>> (id & 31)) & 1) !== 1) throw new Error(`token ${id} is not allowed: the document is off the grammar`);
      if (!native.matcherAdvance(m, id)) throw new Error(`token ${id} was refused`);
    }
    if (!native.matcherStatus(m).accepts) throw new Error('the document did not complete the grammar');
  } finally {
    native.disposeHandle(m);
  }
  return times;
}

export async function runGrammar(): Promise<void> {
  const tok = await QwenTokenizer.load(tokenizerDir());
  let t0 = performance.now();
  const { bytes, offsets } = tok.textTokenBytes(VOCAB);
  const syncVocab = native.grammarVocabulary(bytes, offsets);
  const buildMs = performance.now() - t0;
  native.disposeHandle(syncVocab);
  // As a model builds it: in slices and on a worker, the event loop's longest stall meanwhile.
  t0 = performance.now();
  const { value: vocab, stallMs } = await longestStall(async () => {
    const built = await tok.textTokenBytesAsync(VOCAB);
    return native.grammarVocabularyAsync(built.bytes, built.offsets);
  });
  const asyncMs = performance.now() - t0;
  let text = 0;
  for (let i = 0; i < VOCAB; i++) if (offsets[i + 1] > offsets[i]) text++;
  console.log(`vocabulary: ${VOCAB} ids, ${text} text tokens, ${bytes.length} bytes; index built once per model: ${buildMs.toFixed(0)} ms blocking,`);
  console.log(`  or ${asyncMs.toFixed(0)} ms off the event loop (what a model does), the loop's longest stall meanwhile ${stallMs.toFixed(1)} ms`);
  console.log(`token_mask variant: ${native.info().ops.token_mask?.chosen ?? '?'}; times in ms per token (mask before each token, N-API call included)\n`);
  const head = ['schema', 'tokens', 'first', 'cold med', 'cold p95', 'cold max', 'warm med', 'warm p95', 'warm max', 'warm misses', 'no-cache med', 'ref med', 'ref/no-cache', 'ref/warm'];
  const rows: string[][] = [];
  const allWarm: number[] = [];
  for (const c of CASES) {
    const ir = compileJsonSchema(c.schema);
    const grammar = native.grammarCompile(flattenGrammar(ir));
    const docs = c.docs.map((d, i) => tok.encode(i === 0 ? JSON.stringify(d, null, 2) : JSON.stringify(d)));
    const tokens = docs.reduce((n, d) => n + d.length, 0);
    // Cold: a fresh grammar's caches, every document once in order.
    const masks = native.grammarMasks(grammar, vocab);
    const cold = docs.flatMap((d) => feed(masks, d));
    // Warm: the same grammar again (what a schema's later requests see), repeated for the spread.
    const missesBefore = native.grammarMasksStats(masks).stateMisses;
    const warmRuns = Array.from({ length: WARM_REPEATS }, () => docs.flatMap((d) => feed(masks, d)));
    const warmMisses = native.grammarMasksStats(masks).stateMisses - missesBefore;
    const warm = warmRuns.flat();
    allWarm.push(...warm);
    const noCacheMasks = native.grammarMasks(grammar, vocab);
    const noCache = feed(noCacheMasks, docs[0], 'trie', false);
    // The reference at the first few states of the first document.
    const refMasks = native.grammarMasks(grammar, vocab);
    const m = native.grammarMatcher(refMasks);
    const ref: number[] = [];
    const every = Math.ceil(docs[0].length / REFERENCE_STATES);
    docs[0].forEach((id, i) => {
      if (i % every === 0) {
        t0 = performance.now();
        native.matcherMask(m, 'reference');
        ref.push(performance.now() - t0);
      }
      native.matcherAdvance(m, id);
    });
    for (const h of [m, refMasks, noCacheMasks, masks, grammar]) native.disposeHandle(h);
    const warmMedians = warmRuns.map((r) => ms(median(r))).join('/');
    rows.push([
      c.name, String(tokens), ms(cold[0]), ms(median(cold)), ms(pct(cold, 0.95)), ms(Math.max(...cold)),
      `${ms(median(warm))} (${warmMedians})`, ms(pct(warm, 0.95)), ms(Math.max(...warm)), String(warmMisses), ms(median(noCache)), ms(median(ref)),
      `${(median(ref) / median(noCache)).toFixed(0)}x`, `${(median(ref) / median(warm)).toFixed(0)}x`,
    ]);
  }
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((x, i) => x.padStart(widths[i])).join('  ');
  console.log(line(head));
  for (const r of rows) console.log(line(r));
  console.log(`\nall schemas, warm: median ${ms(median(allWarm))} ms, p95 ${ms(pct(allWarm, 0.95))} ms (target <= 1 ms per token)`);
  console.log('cold: the first documents on fresh grammar caches; warm: the same documents again (spread: the median of each');
  console.log('repeat; warm misses: states computed again, 0 = every warm mask was a cache copy, so a slow one is the machine');
  console.log('being busy); no-cache: the trie walk alone on every token; ref: every token simulated, at states spread over the first document');
  native.disposeHandle(vocab);
}
