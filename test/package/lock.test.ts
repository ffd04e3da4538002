// package.json and package-lock.json must agree, or `npm install` in a fresh clone rewrites the
// lock (as it did when cmake-js was optional in package.json but dev in the lock).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const read = (f: string) => JSON.parse(readFileSync(new URL(`../../${f}`, import.meta.url), 'utf8'));
const pkg = read('package.json');
const lock = read('package-lock.json');
const SECTIONS = ['dependencies', 'devDependencies', 'optionalDependencies', 'peerDependencies'] as const;

describe('package-lock.json matches package.json', () => {
  it('same name, version and dependency sections at the root', () => {
    expect(lock.name).toBe(pkg.name);
    expect(lock.version).toBe(pkg.version);
    const root = lock.packages[''];
    for (const s of SECTIONS) expect(root[s] ?? {}, s).toEqual(pkg[s] ?? {});
  });

  it('every direct dependency is locked with the flags of its section', () => {
    // A dev dependency that a production package also needs (ajv: fastify) is not dev-only, and npm
    // locks it without the flag.
    const neededInProduction = new Set<string>();
    for (const [path, entry] of Object.entries<{ dev?: boolean; dependencies?: Record<string, string> }>(lock.packages)) {
      if (path !== '' && !entry.dev) for (const dep of Object.keys(entry.dependencies ?? {})) neededInProduction.add(dep);
    }
    for (const s of SECTIONS) {
      for (const [name, range] of Object.entries<string>(pkg[s] ?? {})) {
        const entry = lock.packages[`node_modules/${name}`];
        expect(entry, name).toBeDefined();
        expect(entry.version, name).toBe(range); // exact pins throughout
        // npm marks dev-only packages dev and optional-only ones optional; a package both
        // optional and a dependency of a dev package is devOptional.
        if (s === 'devDependencies') expect(entry.dev || entry.devOptional || neededInProduction.has(name), name).toBe(true);
        if (s === 'optionalDependencies') expect({ name, dev: entry.dev, optional: entry.optional }).toEqual({ name, dev: undefined, optional: true });
        if (s === 'dependencies') expect({ name, dev: entry.dev, optional: entry.optional }).toEqual({ name, dev: undefined, optional: undefined });
      }
    }
  });
});
