/**
 * What every `qwenvl` subcommand provides: its help text, its options for `util.parseArgs`, and
 * the code that runs once the arguments have been parsed.
 * @internal
 * @module
 */
import type { ParseArgsConfig } from 'node:util';

/** Options of one command, in `util.parseArgs` form (all values are strings or booleans). @internal */
export type CommandOptions = NonNullable<ParseArgsConfig['options']>;

/** Parsed arguments handed to {@link Command.run}. @internal */
export interface CommandArgs {
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  positionals: string[];
  /** Aborted when stdout is closed (the reader went away): long work should stop. */
  signal: AbortSignal;
}

/** One subcommand. @internal */
export interface Command {
  name: string;
  /** One line for the top-level command list. */
  summary: string;
  /** The full help text (`qwenvl <name> --help`), starting with the `usage:` line. */
  help: string;
  /** Its options; `-h` / `--help` is added for every command. */
  options: CommandOptions;
  /** Runs the command; resolves to the exit status. Throws {@link UsageError} for bad arguments. */
  run(args: CommandArgs): Promise<number>;
}
