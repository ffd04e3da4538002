#!/usr/bin/env node
/**
 * The `qwenvl` command line: one file per command in ./commands.
 * @internal
 * @module
 */
import { QwenVLError } from '../errors.js';
import { chatCommand } from './commands/chat.js';
import { conformanceCommand } from './commands/conformance.js';
import { infoCommand } from './commands/info.js';
import { selftestCommand } from './commands/selftest.js';

/** @internal */
export interface Command {
  name: string;
  summary: string;
  run(args: string[]): Promise<number>;
}

const commands: Command[] = [chatCommand, conformanceCommand, infoCommand, selftestCommand];

function usage(): string {
  const lines = commands.map((c) => `  ${c.name.padEnd(12)} ${c.summary}`);
  return `usage: qwenvl <command> [options]\n\ncommands:\n${lines.join('\n')}\n`;
}

/** Runs the CLI with the given arguments; resolves to the exit status. @internal */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    process.stderr.write(`qwenvl: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  try {
    return await cmd.run(rest);
  } catch (err) {
    if (err instanceof QwenVLError) {
      process.stderr.write(`qwenvl ${name}: ${err.code}: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`qwenvl: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
