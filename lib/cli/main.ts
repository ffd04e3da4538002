#!/usr/bin/env node
/**
 * The `qwenvl` executable: watches stdout, runs {@link main} on the process arguments and sets
 * the exit status.
 * @internal
 * @module
 */
import { main, reportError } from './run.js';

/** stdout closing early (EPIPE) aborts this signal instead of throwing from a write. */
function watchStdout(): AbortController {
  const closed = new AbortController();
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') process.stderr.write(`qwenvl: cannot write to stdout (${err.code ?? err.message})\n`);
    closed.abort();
  });
  return closed;
}

const stdoutClosed = watchStdout();
main(process.argv.slice(2), stdoutClosed.signal).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.exitCode = reportError(err);
  },
);
