#!/usr/bin/env node
// npm install hook. A matching prebuild (prebuilds/<platform>-<arch>/) or an existing local
// build is used as is. Otherwise the addon is built from source: with cmake-js (Release, CUDA
// when nvcc is found) when cmake is on PATH, else with node-gyp from binding.gyp (CPU only).
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.join(__dirname, '..');

function hasBinary() {
  try {
    require('node-gyp-build').path(root);
    return true;
  } catch {
    return false;
  }
}

function onPath(cmd) {
  const r = spawnSync(cmd, ['--version'], { stdio: 'ignore' });
  return r.status === 0;
}

function run(cmd, args) {
  console.log(`qwenvl: ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
  return r.status === 0;
}

if (process.env.QWENVL_FORCE_BUILD !== '1' && hasBinary()) process.exit(0);

let cmakeJs;
try {
  cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
} catch {
  cmakeJs = undefined;
}
if (cmakeJs && onPath('cmake') && run(process.execPath, [cmakeJs, 'rebuild'])) process.exit(0);

// npm exposes its bundled node-gyp to install scripts.
const gyp = process.env.npm_config_node_gyp;
const ok = gyp ? run(process.execPath, [gyp, 'rebuild']) : run('node-gyp', ['rebuild']);
if (!ok) {
  console.error(
    'qwenvl: no prebuilt addon matches this platform and building from source failed.\n' +
      'Building needs a C++17 compiler and cmake (or python3 + make for node-gyp).',
  );
  process.exit(1);
}
