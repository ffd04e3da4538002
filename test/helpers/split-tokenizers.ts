/**
 * Re-makes the de-duplicated tokenizer files of test/fixtures from full checkpoint folders:
 * test/fixtures/tokenizer/base.json (the part every family shares) and
 * test/fixtures/<family>/tokenizer.added_tokens.json. Run after replacing a fixture family:
 *
 *   npx tsx test/helpers/split-tokenizers.ts [SOURCE_FIXTURES_DIR]
 *
 * SOURCE_FIXTURES_DIR holds <family>/checkpoint/tokenizer.json (default: test/fixtures itself,
 * after materializeTokenizers). Fails when the families do not share one base.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ADDED_TOKENS_FILE, REPO_FIXTURES, TOKENIZER_BASE, fixtureDir, joinTokenizer, splitTokenizer } from './fixtures.js';

const source = process.argv[2] ?? REPO_FIXTURES;
let base: string | undefined;
for (const family of readdirSync(REPO_FIXTURES).sort()) {
  const file = join(source, family, 'checkpoint', 'tokenizer.json');
  if (!existsSync(file)) continue;
  const text = readFileSync(file, 'utf8');
  const parts = splitTokenizer(text);
  if (joinTokenizer(parts.base, parts.addedTokens) !== text) throw new Error(`${file}: split does not round-trip`);
  if (base !== undefined && parts.base !== base) throw new Error(`${file}: differs from the other families outside added_tokens`);
  base = parts.base;
  writeFileSync(join(fixtureDir(family), ADDED_TOKENS_FILE), parts.addedTokens);
  console.log(`${family}: ${ADDED_TOKENS_FILE} (${parts.addedTokens.length} chars)`);
}
if (base === undefined) throw new Error(`no <family>/checkpoint/tokenizer.json under ${source}`);
mkdirSync(dirname(TOKENIZER_BASE), { recursive: true });
writeFileSync(TOKENIZER_BASE, base);
console.log(`${TOKENIZER_BASE} (${base.length} chars)`);
