#!/usr/bin/env node
// prebuildify only knows how to spawn node-gyp. This shim accepts the node-gyp arguments
// prebuildify passes and runs cmake-js instead, so release prebuilds get the CMake build
// (with CUDA when nvcc is present). Extra cmake-js flags come from QWENVL_CMAKE_ARGS.
// QWENVL_PREBUILD_WITH=node-gyp hands the arguments to node-gyp unchanged instead (the CPU-only
// binding.gyp build), so `npm pack` can make its prebuild without cmake.
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.join(__dirname, '..');
const args = process.argv.slice(2);

if (process.env.QWENVL_PREBUILD_WITH === 'node-gyp') {
  const gyp = require.resolve('node-gyp/bin/node-gyp.js', { paths: [root] });
  const r = spawnSync(process.execPath, [gyp, ...args], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}

const out = ['rebuild'];
for (const a of args) {
  if (a.startsWith('--arch=')) out.push(`--arch=${a.slice(7)}`);
  else if (a === '--debug') out.push('--debug');
}
if (process.env.QWENVL_CMAKE_ARGS) out.push(...process.env.QWENVL_CMAKE_ARGS.split(/\s+/).filter(Boolean));
const cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
const r = spawnSync(process.execPath, [cmakeJs, ...out], { stdio: 'inherit' });
process.exit(r.status ?? 1);
