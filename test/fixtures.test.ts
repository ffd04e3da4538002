// The in-repo reference fixtures: complete, byte-identical to what their manifests record (the
// tokenizer.json files included, joined from their de-duplicated parts), found through the one
// helper every test uses, and merged with a fuller external tree the way CI relies on.
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ADDED_TOKENS_FILE,
  FAMILIES,
  MODEL_CONFIGS,
  REPO_FIXTURES,
  TOKENIZER_BASE,
  checkpointDir,
  fixtureCaseRefs,
  fixtureDir,
  fixtureFolders,
  joinTokenizer,
  splitTokenizer,
} from './helpers/fixtures.js';

const REPO = join(REPO_FIXTURES, '..', '..');
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

describe('in-repo fixtures', () => {
  it.each(FAMILIES)('%s: every checkpoint file has the size and sha256 its manifest records', (family) => {
    const dir = fixtureDir(family);
    for (const f of ['README.md', 'manifest.json', 'checkpoint', 'cases', 'inputs']) expect(existsSync(join(dir, f)), f).toBe(true);
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as {
      family: string;
      checkpoint_files: Record<string, { bytes: number; sha256: string }>;
    };
    expect(manifest.family).toBe(family);
    expect(Object.keys(manifest.checkpoint_files)).toContain('tokenizer.json');
    for (const [name, want] of Object.entries(manifest.checkpoint_files)) {
      const file = join(checkpointDir(family), name);
      expect(statSync(file).size, name).toBe(want.bytes);
      expect(sha256(file), name).toBe(want.sha256);
    }
    expect(readdirSync(checkpointDir(family)).sort()).toEqual(Object.keys(manifest.checkpoint_files).sort());
  });

  it('stores the tokenizers once: one shared base, each family only its added_tokens', () => {
    const base = readFileSync(TOKENIZER_BASE, 'utf8');
    expect(JSON.parse(base).added_tokens).toEqual([]);
    for (const family of FAMILIES) {
      const added = readFileSync(join(fixtureDir(family), ADDED_TOKENS_FILE), 'utf8');
      const full = readFileSync(join(checkpointDir(family), 'tokenizer.json'), 'utf8');
      expect(splitTokenizer(full)).toEqual({ base, addedTokens: added });
      expect(JSON.parse(full).added_tokens).toEqual(JSON.parse(added));
    }
    // The joined files are not committed; only their parts are.
    const ignored = readFileSync(join(REPO, '.gitignore'), 'utf8');
    expect(ignored).toMatch(/^test\/fixtures\/\*\/checkpoint\/tokenizer\.json$/m);
  });

  it('split and join are exact inverses, strings holding brackets and quotes included', () => {
    const text = '{"version":"1.0","added_tokens":[{"id":1,"content":"]\\"[{"},{"id":2,"content":"\\\\"}],"model":{"vocab":{"added_tokens":0,"]":1}}}';
    const parts = splitTokenizer(text);
    expect(parts.addedTokens).toBe('[{"id":1,"content":"]\\"[{"},{"id":2,"content":"\\\\"}]');
    expect(parts.base).toBe('{"version":"1.0","added_tokens":[],"model":{"vocab":{"added_tokens":0,"]":1}}}');
    expect(joinTokenizer(parts.base, parts.addedTokens)).toBe(text);
    expect(() => joinTokenizer(text, '[]')).toThrow(/not empty/);
    expect(() => splitTokenizer('{"model":{}}')).toThrow(/no "added_tokens"/);
  });

  it('holds the published model configs with their README', () => {
    expect(existsSync(join(MODEL_CONFIGS, 'README.md'))).toBe(true);
    expect(readdirSync(MODEL_CONFIGS).filter((d) => d.startsWith('Qwen__')).length).toBeGreaterThanOrEqual(5);
  });

  it('no test or benchmark reaches outside the repository for fixtures except through the helper', () => {
    const offenders: string[] = [];
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) {
          if (p !== REPO_FIXTURES) walk(p);
        } else if (/\.(ts|js|cjs|mjs)$/.test(e.name) && !p.endsWith(join('helpers', 'fixtures.ts')) && p !== join(REPO, 'test', 'fixtures.test.ts')) {
          const src = readFileSync(p, 'utf8');
          if (/\/work\/shared|shared\/(fixtures|model-configs)['/]|\.\.\/shared\/?'/.test(src.replace(/^\s*(\/\/|\*).*$/gm, ''))) offenders.push(relative(REPO, p));
        }
      }
    };
    walk(join(REPO, 'test'));
    walk(join(REPO, 'bench'));
    expect(offenders).toEqual([]);
  });
});

describe('fixture trees: the union, external names winning', () => {
  const work = mkdtempSync(join(tmpdir(), 'qwenvl-fixtrees-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  function folder(root: string, family: string, cases: string[]) {
    mkdirSync(join(root, family, 'checkpoint'), { recursive: true });
    for (const c of cases) {
      mkdirSync(join(root, family, 'cases', c), { recursive: true });
      writeFileSync(join(root, family, 'cases', c, 'meta.json'), '{}');
    }
  }

  it('merges folders and cases; each case keeps the folder it came from', () => {
    const ext = join(work, 'ext'), repo = join(work, 'repo');
    folder(repo, 'a', ['one', 'two']);
    folder(repo, 'b', ['one']);
    folder(ext, 'a', ['two', 'three']);
    folder(ext, 'c', ['x']);
    mkdirSync(join(ext, 'a', 'cases', 'no-meta')); // not a case
    mkdirSync(join(ext, 'not-a-folder'));
    const roots = [ext, repo];
    expect(fixtureFolders(roots)).toEqual([
      { family: 'a', dir: join(ext, 'a') },
      { family: 'b', dir: join(repo, 'b') },
      { family: 'c', dir: join(ext, 'c') },
    ]);
    expect(fixtureCaseRefs(undefined, roots).map((c) => `${c.family}/${c.name}@${relative(work, c.root)}`)).toEqual([
      'a/one@repo/a',
      'a/three@ext/a',
      'a/two@ext/a',
      'b/one@repo/b',
      'c/x@ext/c',
    ]);
    expect(fixtureCaseRefs('a', roots).map((c) => c.dir)).toEqual([
      join(repo, 'a', 'cases', 'one'),
      join(ext, 'a', 'cases', 'three'),
      join(ext, 'a', 'cases', 'two'),
    ]);
  });

  it('with the in-repo tree alone, every family and case of test/fixtures is found', () => {
    const copy = join(work, 'copy');
    cpSync(join(REPO_FIXTURES, 'qwen2-vl', 'cases'), join(copy, 'qwen2-vl', 'cases'), { recursive: true });
    mkdirSync(join(copy, 'qwen2-vl', 'checkpoint'));
    expect(fixtureFolders([REPO_FIXTURES]).map((f) => f.family)).toEqual([...FAMILIES]);
    const names = fixtureCaseRefs('qwen2-vl', [REPO_FIXTURES]).map((c) => c.name);
    expect(names).toEqual(readdirSync(join(REPO_FIXTURES, 'qwen2-vl', 'cases')).sort());
    expect(fixtureCaseRefs('qwen2-vl', [copy, REPO_FIXTURES]).every((c) => c.root === join(copy, 'qwen2-vl'))).toBe(true);
  });
});
