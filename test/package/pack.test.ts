// Release path end to end: `npm pack` runs prepack, which compiles lib/ and makes the prebuild
// with prebuildify (here through node-gyp from binding.gyp, the fallback build, CPU only); the
// tarball must carry prebuilds/<platform>-<arch>/*.node. It is installed into an empty project
// whose PATH has no compiler, cmake or python, and loaded from CommonJS and from ESM.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'qwenvl-pack-'));

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

function sh(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): string {
  return execFileSync(cmd, args, { cwd, env, encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A bin dir holding only node, npm and the shell tools npm needs to run scripts. */
function minimalPath(): string {
  const bin = join(work, 'bin');
  mkdirSync(bin);
  symlinkSync(process.execPath, join(bin, 'node'));
  // npm's own entry script: where npm runs us it says so, else it sits beside node.
  const candidates = [
    process.env.npm_execpath,
    join(dirname(process.execPath), '../lib/node_modules/npm/bin/npm-cli.js'),
    realpathSync(execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim()),
  ];
  const npmCli = candidates.find((c): c is string => !!c && c.endsWith('npm-cli.js') && existsSync(c));
  if (!npmCli) throw new Error(`npm-cli.js not found among ${candidates.join(', ')}`);
  symlinkSync(npmCli, join(bin, 'npm'));
  for (const tool of ['sh', 'env', 'cat', 'ls', 'mkdir', 'rm', 'cp', 'mv', 'chmod', 'uname', 'grep', 'sed']) {
    for (const dir of ['/bin', '/usr/bin']) {
      if (existsSync(join(dir, tool))) {
        symlinkSync(join(dir, tool), join(bin, tool));
        break;
      }
    }
  }
  return bin;
}

describe('npm pack + install without a compiler', () => {
  it('installs from the prebuild and loads from CommonJS and ESM', () => {
    const pkg = join(work, 'pkg');
    mkdirSync(pkg);
    for (const f of ['package.json', 'binding.gyp', 'CMakeLists.txt', 'README.md', 'tsconfig.json', 'tsconfig.build.json', '.npmrc']) {
      cpSync(join(repo, f), join(pkg, f));
    }
    for (const d of ['native', 'lib', 'scripts']) cpSync(join(repo, d), join(pkg, d), { recursive: true });
    symlinkSync(join(repo, 'node_modules'), join(pkg, 'node_modules'));

    expect(existsSync(join(pkg, 'dist'))).toBe(false);
    expect(existsSync(join(pkg, 'prebuilds'))).toBe(false);
    // QWENVL_PREBUILD_WITH=node-gyp: the prebuildify script's backend becomes node-gyp, which also
    // proves binding.gyp builds the addon. JOBS: node-gyp compiles with one make job unless told.
    const gypEnv = {
      ...process.env,
      QWENVL_PREBUILD_WITH: 'node-gyp',
      JOBS: 'max',
      ...(existsSync('/usr/include/node/node_api.h') ? { npm_config_nodedir: '/usr' } : {}),
    };
    // prepack's output shares stdout with the JSON report, which comes last.
    const out = sh('npm', ['pack', '--json', '--pack-destination', work], pkg, gypEnv);
    const packed = JSON.parse(out.slice(out.search(/^\[\s*\{/m))) as { filename: string; files: { path: string }[] }[];
    const files = packed[0]!.files.map((f) => f.path);
    expect(files).toContain('dist/index.js');
    const target = `prebuilds/${process.platform}-${process.arch}/`;
    expect(files.filter((f) => f.startsWith(target) && f.endsWith('.node'))).toHaveLength(1);
    expect(files.some((f) => f.startsWith('build/'))).toBe(false);

    const app = join(work, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    const bin = minimalPath();
    const env = { HOME: process.env.HOME ?? work, PATH: bin, npm_config_nodedir: '', npm_config_update_notifier: 'false' };
    for (const tool of ['g++', 'cc', 'gcc', 'make', 'cmake', 'python3', 'nvcc', 'ninja']) {
      expect(() => execFileSync(tool, ['--version'], { env, stdio: 'ignore' }), tool).toThrow();
    }
    sh(join(bin, 'npm'), ['install', '--no-audit', '--no-fund', '--prefer-offline', join(work, packed[0]!.filename)], app, env);
    expect(existsSync(join(app, 'node_modules/qwenvl/build'))).toBe(false);

    const cjs = sh(join(bin, 'node'), ['-e', 'const q = require("qwenvl"); const i = q.info(); console.log(JSON.stringify({v: i.version, ops: Object.keys(i.ops).length, cuda: i.cuda.available}))'], app, env);
    expect(JSON.parse(cjs)).toMatchObject({ v: expect.any(String), cuda: false });
    const esm = sh(join(bin, 'node'), ['--input-type=module', '-e', 'import { info, QwenVLError } from "qwenvl"; console.log(typeof info().version, typeof QwenVLError)'], app, env);
    expect(esm.trim()).toBe('string function');
  }, 900_000);
});
