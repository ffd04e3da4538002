// scripts/install.cjs: uses a binary that loads; otherwise says up front why it builds, how long
// that takes and how to avoid it, then reports the build's progress. The build tool here is a
// stand-in node-gyp that prints what node-gyp's make prints and writes no addon.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);
const repo = join(__dirname, '..', '..');
const work = mkdtempSync(join(tmpdir(), 'qwenvl-install-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

let n = 0;
/** A package folder with install.cjs, the source list and node-gyp-build, and no binary. */
function pkg(): string {
  const dir = join(work, `pkg${n++}`);
  mkdirSync(join(dir, 'scripts'), { recursive: true });
  mkdirSync(join(dir, 'native'));
  mkdirSync(join(dir, 'node_modules'));
  copyFileSync(join(repo, 'scripts/install.cjs'), join(dir, 'scripts/install.cjs'));
  copyFileSync(join(repo, 'native/sources.json'), join(dir, 'native/sources.json'));
  symlinkSync(join(repo, 'node_modules/node-gyp-build'), join(dir, 'node_modules/node-gyp-build'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'qwenvl', version: '0.0.0' }));
  return dir;
}

/** A node-gyp stand-in: three make lines, then the exit status asked for. */
function fakeGyp(status: number): string {
  const file = join(work, `gyp${status}.cjs`);
  writeFileSync(
    file,
    `for (const f of ['a', 'b', 'c']) console.log('  CXX(target) Release/obj.target/qwenvl/native/' + f + '.o');\n` +
      `console.log('FAKE-GYP-DONE');\nprocess.exit(${status});\n`,
  );
  return file;
}

function install(dir: string, env: Record<string, string>) {
  // No cmake on PATH: the node-gyp path, which npm_config_node_gyp points at the stand-in.
  const r = spawnSync(process.execPath, [join(dir, 'scripts/install.cjs')], {
    cwd: dir,
    encoding: 'utf8',
    env: { PATH: '/nonexistent', HOME: work, ...env },
  });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

describe('scripts/install.cjs', () => {
  it('without a prebuild: explains before building, then shows progress', () => {
    const r = install(pkg(), { npm_config_node_gyp: fakeGyp(0) });
    expect(r.status).toBe(0);
    const head = r.err.slice(0, r.err.indexOf('running'));
    expect(head).toMatch(/^qwenvl: building the native addon from source, because (this copy has no prebuilt addon for linux-x64|no prebuilt addon ships for \S+)/);
    expect(head).toMatch(/node-gyp \(binding\.gyp, CPU only\) on \d+ core/);
    expect(head).toMatch(/takes 1-3 minutes/);
    expect(head).toMatch(/QWENVL_ADDON_PATH/);
    // The first compiled file is reported at once; the build's own output passes through.
    expect(r.err).toMatch(/qwenvl: building: compiled 1\/\d+ files \(\d+ s\)/);
    expect(r.out).toContain('FAKE-GYP-DONE');
    expect(r.err).toMatch(/qwenvl: built in \d+ s/);
  });

  it('a prebuild that does not load is named, and the addon is built', () => {
    const dir = pkg();
    mkdirSync(join(dir, 'prebuilds', `${process.platform}-${process.arch}`), { recursive: true });
    writeFileSync(join(dir, 'prebuilds', `${process.platform}-${process.arch}`, 'node.napi.node'), 'not an ELF file');
    const r = install(dir, { npm_config_node_gyp: fakeGyp(0) });
    expect(r.status).toBe(0);
    expect(r.err).toMatch(/because the addon prebuilds\/\S+\/node\.napi\.node does not load here: /);
    expect(r.out).toContain('FAKE-GYP-DONE');
  });

  it('a failed build exits 1 and says which packages a build needs', () => {
    const r = install(pkg(), { npm_config_node_gyp: fakeGyp(2) });
    expect(r.status).toBe(1);
    expect(r.err).toMatch(/qwenvl: node-gyp failed \(exit 2\) after \d+ s/);
    expect(r.err).toMatch(/apt-get install build-essential cmake ninja-build python3/);
  });

  it('a binary that loads, or QWENVL_ADDON_PATH naming a file: nothing is built', () => {
    const built = pkg();
    mkdirSync(join(built, 'build', 'Release'), { recursive: true });
    copyFileSync(require('node-gyp-build').path(repo), join(built, 'build', 'Release', 'qwenvl.node'));
    expect(install(built, { npm_config_node_gyp: fakeGyp(0) })).toMatchObject({ status: 0, err: '', out: '' });
    const dir = pkg();
    const addon = join(dir, 'custom.node');
    writeFileSync(addon, '');
    expect(install(dir, { npm_config_node_gyp: fakeGyp(0), QWENVL_ADDON_PATH: addon })).toMatchObject({ status: 0, err: '', out: '' });
    const missing = install(pkg(), { npm_config_node_gyp: fakeGyp(0), QWENVL_ADDON_PATH: join(work, 'nope.node') });
    expect(missing.err).toMatch(/QWENVL_ADDON_PATH names \S+nope\.node, which does not exist/);
  });
});
