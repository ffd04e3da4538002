#!/usr/bin/env node
// npm install hook. A prebuild that matches this platform (prebuilds/<platform>-<arch>/, shipped
// for linux-x64) or an existing local build is used as is, once it is known to load. Otherwise
// the addon is built from source: with cmake-js (Release, CUDA when nvcc is found) when cmake is
// on PATH, else with node-gyp from binding.gyp (CPU only).
//
// npm (7+) captures a dependency's install output and shows it only when the script fails, so a
// build would look like a silent hang. What is happening (why it builds, roughly how long, how
// to avoid it) and the build's progress are therefore also written to the terminal directly.
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const target = `${process.platform}-${process.arch}`;

let tty = null;
if (!process.stderr.isTTY) {
  try {
    tty = fs.openSync('/dev/tty', 'w');
  } catch {
    tty = null; // no controlling terminal (CI): the captured output is all there is
  }
}

/** A message for the person waiting: to stderr (captured by npm) and to the terminal. */
function say(msg) {
  const text = msg.replace(/^/gm, 'qwenvl: ') + '\n';
  process.stderr.write(text);
  if (tty !== null) {
    try {
      fs.writeSync(tty, text);
    } catch {
      tty = null;
    }
  }
}

function firstLine(s) {
  return String(s).split('\n').find((l) => l.trim() !== '') ?? '';
}

/** Why a build from source is needed, or null when a binary is there and loads. */
function whyBuild() {
  if (process.env.QWENVL_FORCE_BUILD === '1') return 'QWENVL_FORCE_BUILD=1 asks for a build from source.';
  const explicit = process.env.QWENVL_ADDON_PATH;
  if (explicit) {
    if (fs.existsSync(explicit)) return null; // loaded from there at run time
    return `QWENVL_ADDON_PATH names ${explicit}, which does not exist.`;
  }
  let file;
  try {
    file = require('node-gyp-build').path(root);
  } catch {
    return target === 'linux-x64'
      ? 'this copy has no prebuilt addon for linux-x64 (the npm package ships one; a git checkout does not) and no local build.'
      : `no prebuilt addon ships for ${target} (only for linux-x64) and there is no local build.`;
  }
  try {
    require(file);
    return null;
  } catch (err) {
    return `the addon ${path.relative(root, file)} does not load here: ${firstLine(err.message)}`;
  }
}

function onPath(cmd) {
  const r = spawnSync(cmd, ['--version'], { stdio: 'ignore' });
  return r.status === 0;
}

/** How many files the CPU-only node-gyp build compiles (native/sources.json is the one source list). */
function gypSourceCount() {
  try {
    const s = JSON.parse(fs.readFileSync(path.join(root, 'native', 'sources.json'), 'utf8'));
    const all = [...(s.core ?? []), ...(s.napi ?? []), ...(s.no_cuda ?? [])];
    return all.filter((f) => typeof f === 'string' && /\.(cc|cpp|cxx)$/.test(f)).length || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Runs a build tool, passing its output through (npm keeps it for the log and shows it on
 * failure) and reporting progress: ninja's [n/N], make's [ n%], node-gyp's one line per object.
 */
function run(label, cmd, args, total) {
  say(`running ${label} ${args[args.length - 1]}`);
  const started = Date.now();
  const secs = () => Math.round((Date.now() - started) / 1000);
  let compiled = 0;
  let lastReport = 0;
  let lastStep = '';
  const report = (step, force) => {
    const now = Date.now();
    if (!force && now - lastReport < 5000) return;
    lastReport = now;
    say(`building: ${step} (${secs()} s)`);
  };
  const scan = (chunk) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      let m;
      if ((m = /^\[(\d+)\/(\d+)\]/.exec(line))) lastStep = `step ${m[1]}/${m[2]}`;
      else if ((m = /^\[\s*(\d+)%\]/.exec(line))) lastStep = `${m[1]}%`;
      else if (/^\s*CXX\(target\)/.test(line)) lastStep = `compiled ${++compiled}${total ? `/${total}` : ''} files`;
      else continue;
      report(lastStep, lastReport === 0);
    }
  };
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], shell: process.platform === 'win32' });
    child.stdout.on('data', (d) => {
      process.stdout.write(d);
      scan(d);
    });
    child.stderr.on('data', (d) => {
      process.stderr.write(d);
      scan(d);
    });
    const beat = setInterval(() => say(`still building${lastStep ? ` (${lastStep})` : ''}, ${secs()} s so far`), 30000);
    child.on('error', (err) => {
      clearInterval(beat);
      say(`${label} could not be started: ${err.message}`);
      resolve(false);
    });
    child.on('close', (code) => {
      clearInterval(beat);
      say(code === 0 ? `built in ${secs()} s` : `${label} failed (exit ${code}) after ${secs()} s`);
      resolve(code === 0);
    });
  });
}

async function main() {
  const why = whyBuild();
  if (why === null) return 0;

  let cmakeJs;
  try {
    cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
  } catch {
    cmakeJs = undefined;
  }
  const useCmake = cmakeJs !== undefined && onPath('cmake');
  const cuda = useCmake && onPath('nvcc');
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  say(
    [
      `building the native addon from source, because ${why}`,
      `with ${useCmake ? `cmake-js (CMake, Release${cuda ? ', CUDA backend: nvcc found' : ''})` : 'node-gyp (binding.gyp, CPU only)'} on ${cores} core(s).`,
      `This usually takes 1-3 minutes${cuda ? ', several more for the CUDA kernels' : ''}, longer on few cores; progress follows.`,
      'To skip it: on linux-x64 (glibc >= 2.34) install the published package, whose prebuild is used as is;',
      'elsewhere build once and point QWENVL_ADDON_PATH at that qwenvl.node (at install and at run time).',
    ].join('\n'),
  );

  if (useCmake && (await run('cmake-js', process.execPath, [cmakeJs, 'rebuild']))) return 0;
  if (useCmake) say('cmake-js failed; trying node-gyp (binding.gyp, CPU only).');

  // npm exposes its bundled node-gyp to install scripts.
  const gyp = process.env.npm_config_node_gyp;
  const total = gypSourceCount();
  const ok = gyp ? await run('node-gyp', process.execPath, [gyp, 'rebuild'], total) : await run('node-gyp', 'node-gyp', ['rebuild'], total);
  if (ok) return 0;
  say(
    `no prebuilt addon could be used (${why}) and building from source failed.\n` +
      'Building needs a C++17 compiler and cmake (or python3 + make for node-gyp); on Debian/Ubuntu:\n' +
      '  apt-get install build-essential cmake ninja-build python3',
  );
  return 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    say(`install failed: ${err && err.stack ? err.stack : err}`);
    process.exit(1);
  },
);
