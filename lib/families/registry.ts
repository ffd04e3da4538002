/**
 * Every supported model family, keyed by config.json `model_type`. Adding a family is one import
 * and one entry below, plus its own file.
 * @module
 */
import type { FamilyDescriptor } from './family.js';
import { qwen2Vl } from './qwen2-vl.js';
import { qwen25Vl } from './qwen2.5-vl.js';
import { qwen3Vl } from './qwen3-vl.js';
import { qwen3VlMoe } from './qwen3-vl-moe.js';
import { publicCall } from '../validate.js';

/** All families, in release order. */
export const FAMILIES = [qwen2Vl, qwen25Vl, qwen3Vl, qwen3VlMoe] as const;

/** A family id ("qwen2-vl", "qwen2.5-vl", "qwen3-vl", "qwen3-vl-moe"). */
export type FamilyId = (typeof FAMILIES)[number]['id'];

const byModelType = new Map<string, FamilyDescriptor<FamilyId>>(FAMILIES.map((f) => [f.modelType, f]));
const byId = new Map<string, FamilyDescriptor<FamilyId>>(FAMILIES.map((f) => [f.id, f]));

/** The family whose config.json `model_type` is `modelType`, or undefined. */
export function familyForModelType(modelType: string): FamilyDescriptor<FamilyId> | undefined {
  return publicCall('familyForModelType', arguments, () => familyForModelTypeImpl(modelType));
}

/** {@link familyForModelType} without the public guard, for internal callers: what it throws passes through unchanged. */
export function familyForModelTypeImpl(modelType: string): FamilyDescriptor<FamilyId> | undefined {
  return byModelType.get(modelType);
}

/** The family with id `id`, or undefined. */
export function getFamily(id: string): FamilyDescriptor<FamilyId> | undefined {
  return publicCall('getFamily', arguments, () => getFamilyImpl(id));
}

/** {@link getFamily} without the public guard, for internal callers: what it throws passes through unchanged. */
export function getFamilyImpl(id: string): FamilyDescriptor<FamilyId> | undefined {
  return byId.get(id);
}

/** The `model_type` values qwenvl can load. */
export function supportedModelTypes(): string[] {
  return publicCall('supportedModelTypes', arguments, () => supportedModelTypesImpl());
}

/** {@link supportedModelTypes} without the public guard, for internal callers: what it throws passes through unchanged. */
export function supportedModelTypesImpl(): string[] {
  return FAMILIES.map((f) => f.modelType);
}
