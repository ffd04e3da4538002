/**
 * An independent JSON schema validator for structured-output tests: ajv (draft 2020-12) with ajv-formats,
 * so compiled grammars are checked against a well-kept implementation rather than against themselves.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import formatsModule from 'ajv-formats';

type AddFormats = (ajv: Ajv2020) => Ajv2020;
const addFormats = ((formatsModule as unknown as { default?: AddFormats }).default ?? formatsModule) as unknown as AddFormats;

/** A function telling whether a value is valid against `schema` (ajv's view). */
export function validatorFor(schema: unknown): (value: unknown) => boolean {
  const ajv = new Ajv2020({ strict: false, validateFormats: true });
  addFormats(ajv);
  const validate = ajv.compile(schema as object);
  return (value) => validate(value) as boolean;
}
