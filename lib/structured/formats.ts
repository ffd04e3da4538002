/**
 * The string formats structured output can guarantee, each as an anchored pattern (compiled by
 * pattern.ts) whose every match passes the usual validators (ajv-formats' "full" mode): dates check the
 * days of each month and leap years, times check hour/minute/second ranges and need a time zone. Some are
 * a useful part of their format rather than all of it: ipv6 in its full eight-group form, hostnames of at
 * most six labels, uris as http(s) URLs with a hostname.
 * @internal
 * @module
 */

const HEX = '[0-9a-fA-F]';
const YEAR = '[0-9]{4}';
// Years divisible by 4 and not by 100, or by 400 (4 digits, leading zeros allowed).
const LEAP_YEAR = '(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)';
const DATE =
  `(?:${YEAR}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)` +
  `|${LEAP_YEAR}-02-29)`;
const TIME = '(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]+)?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])';
const EMAIL_LOCAL = "[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]+";
const LABEL = '[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?';
const HOST_LABEL = (most: number) => `[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,${most - 2}}[a-zA-Z0-9])?`;
// At most 63 + 5 * (1 + 30) = 218 characters: within a hostname's 253.
const HOSTNAME = `${HOST_LABEL(63)}(?:\\.${HOST_LABEL(30)}){0,5}`;
const PCHAR = "(?:[a-zA-Z0-9._~!$&'()*+,;=:@-]|%[0-9a-fA-F]{2})";
const QCHAR = `(?:${PCHAR}|[/?])`;
const OCTET = '(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';

/** Supported `format` values and the pattern of their strings. */
export const FORMAT_PATTERNS: Readonly<Record<string, string>> = {
  date: `^${DATE}$`,
  time: `^${TIME}$`,
  'date-time': `^${DATE}[Tt]${TIME}$`,
  uuid: `^${HEX}{8}-${HEX}{4}-${HEX}{4}-${HEX}{4}-${HEX}{12}$`,
  email: `^${EMAIL_LOCAL}(?:\\.${EMAIL_LOCAL})*@(?:${LABEL}\\.)+${LABEL}$`,
  ipv4: `^${OCTET}(?:\\.${OCTET}){3}$`,
  ipv6: `^${HEX}{1,4}(?::${HEX}{1,4}){7}$`,
  hostname: `^${HOSTNAME}$`,
  uri: `^https?://${HOSTNAME}(?::[0-9]{1,5})?(?:/${PCHAR}*)*(?:\\?${QCHAR}*)?(?:#${QCHAR}*)?$`,
  byte: '^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$',
};

/** Formats that constrain nothing (ajv-formats accepts every value): OpenAPI's hints. */
export const FREE_FORMATS: ReadonlySet<string> = new Set(['binary', 'password', 'float', 'double']);

/** Number formats handled as integer bounds (number-bounds.ts). */
const NUMBER_FORMATS: ReadonlySet<string> = new Set(['int32', 'int64']);

/**
 * Whether structured output knows `format`: a string format it writes, a number format it bounds, or one
 * that constrains nothing. A format of one kind says nothing about values of other types.
 */
export function knownFormat(format: string): boolean {
  return Object.hasOwn(FORMAT_PATTERNS, format) || FREE_FORMATS.has(format) || NUMBER_FORMATS.has(format);
}
