/**
 * An independent JSON schema validator for structured-output tests: ajv (draft 2020-12) with ajv-formats,
 * so compiled grammars are checked against a well-kept implementation rather than against themselves.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import { Ajv } from 'ajv';
import formatsModule from 'ajv-formats';

type AddFormats = (ajv: Ajv2020 | Ajv) => Ajv2020 | Ajv;
const addFormats = ((formatsModule as unknown as { default?: AddFormats }).default ?? formatsModule) as unknown as AddFormats;

/**
 * A function telling whether a value is valid against `schema` (ajv's view): draft 2020-12, or draft-07
 * when the schema's `$schema` says so.
 */
export function validatorFor(schema: unknown): (value: unknown) => boolean {
  const draft7 = /draft-07/.test(String((schema as { $schema?: unknown } | null)?.$schema ?? ''));
  const options = { strict: false, validateFormats: true };
  const ajv = draft7 ? new Ajv(options) : new Ajv2020(options);
  addFormats(ajv);
  const validate = ajv.compile(schema as object);
  return (value) => validate(value) as boolean;
}

/** Whether a parsed value holds a number JSON text can say but a double cannot (1e999 parses to Infinity). */
export function nonFinite(v: unknown): boolean {
  if (typeof v === 'number') return !Number.isFinite(v);
  if (typeof v !== 'object' || v === null) return false;
  return Object.values(v).some(nonFinite);
}
