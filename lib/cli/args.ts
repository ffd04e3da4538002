/**
 * Argument parsing for the CLI: strict `util.parseArgs` with one-line messages, and number flags
 * read exactly as typed (no `Number('')` = 0, no `1e3` where an integer is meant).
 * @internal
 * @module
 */
import { parseArgs } from 'node:util';
import type { CommandOptions } from './command.js';

/**
 * Bad command-line arguments: the CLI prints the message (and, when `showUsage`, the command's
 * usage) on stderr and exits with status 2.
 * @internal
 */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly showUsage = true,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Whether `-h` / `--help` appears before a `--` terminator: help wins over every other argument. @internal */
export function wantsHelp(args: readonly string[]): boolean {
  for (const a of args) {
    if (a === '--') return false;
    if (a === '-h' || a === '--help') return true;
  }
  return false;
}

/** Strict parse of one command's arguments; every problem becomes a one-line {@link UsageError}. @internal */
export function parseCommandArgs(args: string[], options: CommandOptions): { values: Record<string, string | boolean | string[] | boolean[] | undefined>; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args, options, allowPositionals: true, strict: true });
    return { values: values as Record<string, string | boolean | string[] | boolean[] | undefined>, positionals };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const name = /'([^']+)'/.exec(err.message)?.[1] ?? '?';
      throw new UsageError(`unknown option '${name}'`);
    }
    if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      const name = /'(-[^ ']+)/.exec(err.message)?.[1] ?? '?';
      if (/argument missing/.test(err.message)) throw new UsageError(`option '${name}' needs a value`);
      if (/does not take an argument/.test(err.message)) throw new UsageError(`option '${name}' takes no value`);
      if (/ambiguous/.test(err.message)) {
        throw new UsageError(`option '${name}' needs a value (write ${name}=VALUE for a value that starts with '-')`);
      }
    }
    throw new UsageError(err.message.split('\n').join(' '));
  }
}

const INTEGER = /^[+-]?\d+$/;
const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/** An integer flag in [min, max]; the message echoes what was typed. @internal */
export function integerFlag(flag: string, raw: string, min: number, max: number = Number.MAX_SAFE_INTEGER): number {
  const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
  const n = INTEGER.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`${flag} must be an integer ${range}, got '${raw}'`);
  }
  return n;
}

/** A decimal number flag that passes `ok` (described by `what`); the message echoes what was typed. @internal */
export function numberFlag(flag: string, raw: string, ok: (x: number) => boolean, what: string): number {
  const n = DECIMAL.test(raw) ? Number(raw) : NaN;
  if (!Number.isFinite(n) || !ok(n)) throw new UsageError(`${flag} must be ${what}, got '${raw}'`);
  return n;
}

/** The string value of an option (undefined when not given). @internal */
export function stringValue(values: Record<string, unknown>, key: string): string | undefined {
  const v = values[key];
  return typeof v === 'string' ? v : undefined;
}

/** The integer option `--key` in [min, max] (see {@link integerFlag}); undefined when not given. @internal */
export function integerOption(values: Record<string, unknown>, key: string, min: number, max?: number): number | undefined {
  const raw = stringValue(values, key);
  return raw === undefined ? undefined : integerFlag(`--${key}`, raw, min, max);
}

/** The decimal option `--key` that passes `ok` (see {@link numberFlag}); undefined when not given. @internal */
export function numberOption(values: Record<string, unknown>, key: string, ok: (x: number) => boolean, what: string): number | undefined {
  const raw = stringValue(values, key);
  return raw === undefined ? undefined : numberFlag(`--${key}`, raw, ok, what);
}

/** `--threads N`, the compute threads of every command that loads a model (1 to 1024); undefined when not given. @internal */
export function threadsOption(values: Record<string, unknown>): number | undefined {
  return integerOption(values, 'threads', 1, 1024);
}

/** `--kv-cache f32|bf16`, the KV cache's storage (engine.kvCache) for commands that generate; undefined when not given. @internal */
export function kvCacheOption(values: Record<string, unknown>): 'f32' | 'bf16' | undefined {
  const raw = stringValue(values, 'kv-cache');
  if (raw !== undefined && raw !== 'f32' && raw !== 'bf16') throw new UsageError(`--kv-cache must be f32 or bf16, got '${raw}'`);
  return raw;
}

/** The values of a repeatable string option. @internal */
export function stringList(values: Record<string, unknown>, key: string): string[] {
  const v = values[key];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}
