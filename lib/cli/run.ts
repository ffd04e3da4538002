/**
 * The `qwenvl` command line as a function of its arguments (./main.ts is the executable); one
 * file per command in ./commands. Conventions: help on stdout with status 0; bad arguments get
 * one line and the usage on stderr with status 2; library errors print `qwenvl: <code>: <message>`
 * with status 1; a closed stdout (`qwenvl … | head`) ends quietly.
 * @internal
 * @module
 */
import { createRequire } from 'node:module';
import { QwenVLError } from '../errors.js';
import { UsageError, parseCommandArgs, wantsHelp } from './args.js';
import type { Command } from './command.js';
import { batchCommand } from './commands/batch.js';
import { benchCommand } from './commands/bench.js';
import { chatCommand } from './commands/chat.js';
import { conformanceCommand } from './commands/conformance.js';
import { infoCommand } from './commands/info.js';
import { pullCommand } from './commands/pull.js';
import { selftestCommand } from './commands/selftest.js';
import { serveCommand } from './commands/serve.js';

export type { Command } from './command.js';

/** Where the CLI's own messages (help, usage errors, error reports) go; commands stream results to process.stdout. @internal */
export interface CliOutput {
  stdout(text: string): void;
  stderr(text: string): void;
}

const processOutput: CliOutput = {
  stdout: (t) => void process.stdout.write(t),
  stderr: (t) => void process.stderr.write(t),
};

const commands: Command[] = [batchCommand, benchCommand, chatCommand, conformanceCommand, infoCommand, pullCommand, selftestCommand, serveCommand];

function usage(): string {
  const lines = commands.map((c) => `  ${c.name.padEnd(12)} ${c.summary}`);
  return (
    'usage: qwenvl <command> [options]\n' +
    '       qwenvl <command> --help | qwenvl --help | qwenvl --version\n\n' +
    `commands:\n${lines.join('\n')}\n`
  );
}

function version(): string {
  // lib/cli/ under tsx and dist/cli/ once built: package.json is two levels up either way.
  const require = createRequire(import.meta.url);
  return (require('../../package.json') as { version: string }).version;
}

/** Prints an error that escaped a command; returns the exit status (1). @internal */
export function reportError(err: unknown, out: CliOutput = processOutput): number {
  if (err instanceof QwenVLError) {
    out.stderr(`qwenvl: ${err.code}: ${err.message}\n`);
    return 1;
  }
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string' && err instanceof Error) {
    // A system error (ENOENT, EACCES, ...) says enough without a stack.
    out.stderr(`qwenvl: ${code}: ${err.message}\n`);
    return 1;
  }
  // Anything else is a bug in qwenvl: keep the stack for the report.
  out.stderr(`qwenvl: internal error: ${(err as Error)?.stack ?? String(err)}\n`);
  return 1;
}

async function runCommand(cmd: Command, args: string[], stdoutClosed: AbortSignal, out: CliOutput): Promise<number> {
  if (wantsHelp(args)) {
    out.stdout(cmd.help);
    return 0;
  }
  try {
    const { values, positionals } = parseCommandArgs(args, cmd.options);
    return await cmd.run({ values, positionals, signal: stdoutClosed });
  } catch (err) {
    if (err instanceof UsageError) {
      // The usage lines (the help text up to its first blank line), not the whole option list.
      const synopsis = `${cmd.help.split('\n\n')[0]}\nrun 'qwenvl ${cmd.name} --help' for the options\n`;
      out.stderr(`qwenvl ${cmd.name}: ${err.message}\n${err.showUsage ? synopsis : ''}`);
      return 2;
    }
    // Whatever failed after the reader went away is a consequence of it: stay quiet.
    if (stdoutClosed.aborted) return 0;
    return reportError(err, out);
  }
}

/**
 * Runs the CLI with the given arguments; resolves to the exit status. `stdoutClosed` is aborted
 * when the reader of stdout went away.
 * @internal
 */
export async function main(
  argv: string[],
  stdoutClosed: AbortSignal = new AbortController().signal,
  out: CliOutput = processOutput,
): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    out.stderr(usage());
    return 2;
  }
  if (name === '--help' || name === '-h') {
    out.stdout(usage());
    return 0;
  }
  if (name === '--version' || name === '-v') {
    out.stdout(`qwenvl ${version()}\n`);
    return 0;
  }
  if (name === 'help') {
    if (rest.length === 0) {
      out.stdout(usage());
      return 0;
    }
    const cmd = commands.find((c) => c.name === rest[0]);
    if (!cmd || rest.length > 1) {
      out.stderr(`qwenvl help: ${cmd ? 'give one command name' : `unknown command '${rest[0]}'`}\n\n${usage()}`);
      return 2;
    }
    out.stdout(cmd.help);
    return 0;
  }
  if (name.startsWith('-')) {
    out.stderr(`qwenvl: unknown option '${name}'\n\n${usage()}`);
    return 2;
  }
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    out.stderr(`qwenvl: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  return runCommand(cmd, rest, stdoutClosed, out);
}

