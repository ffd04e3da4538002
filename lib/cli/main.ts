#!/usr/bin/env node
/**
 * The `qwenvl` executable: watches stdout, runs {@link main} on the process arguments and sets
 * the exit status.
 * @internal
 * @module
 */
import { main, reportError } from './run.js';

let stdoutFailed = false;

/**
 * stdout closing early aborts this signal instead of throwing from a write. EPIPE (the reader went
 * away, as with `| head`) is quiet; any other write error is reported and makes the status 1.
 */
function watchStdout(): AbortController {
  const closed = new AbortController();
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE' && !stdoutFailed) {
      stdoutFailed = true;
      process.exitCode = 1;
      process.stderr.write(`qwenvl: cannot write to stdout (${err.code ?? err.message})\n`);
    }
    closed.abort();
  });
  return closed;
}

const stdoutClosed = watchStdout();
main(process.argv.slice(2), stdoutClosed.signal).then(
  (code) => {
    process.exitCode = stdoutFailed ? 1 : code;
  },
  (err: unknown) => {
    process.exitCode = reportError(err);
  },
);
