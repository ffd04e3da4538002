/**
 * Which files of a repository a model needs: what `loadModel` reads, nothing else (no README,
 * vocab.json, merges.txt, .bin or .gguf weights, ONNX exports, ...). Shards are taken from the
 * safetensors index, so a repository holding several weight variants only gets the listed ones.
 * @internal
 * @module
 */
import { QwenVLError } from '../errors.js';

/** Files fetched when the repository has them; all but config.json and the weights are optional. */
export const MODEL_FILES = [
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'preprocessor_config.json',
  'video_preprocessor_config.json',
  'processor_config.json',
  'chat_template.json',
  'chat_template.jinja',
] as const;

/** The files the cache must hold for a load to work without the network. */
export const REQUIRED_FILES = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'preprocessor_config.json'] as const;

export const SINGLE_WEIGHTS = 'model.safetensors';
export const WEIGHTS_INDEX = 'model.safetensors.index.json';

/** The first-stage list from the repository's file list: the fixed files, the extra chat templates and the weights (index or single file). */
export function selectFiles(repoId: string, names: readonly string[]): { files: string[]; index: boolean } {
  const have = new Set(names);
  if (!have.has('config.json')) throw new QwenVLError('E_NOT_FOUND', `${repoId}: the repository has no config.json`);
  const files: string[] = MODEL_FILES.filter((f) => have.has(f));
  files.push(...names.filter((n) => /^additional_chat_templates\/[^/]+\.jinja$/.test(n)).sort());
  if (have.has(WEIGHTS_INDEX)) return { files: [...files, WEIGHTS_INDEX], index: true };
  if (have.has(SINGLE_WEIGHTS)) return { files: [...files, SINGLE_WEIGHTS], index: false };
  throw new QwenVLError('E_NOT_FOUND', `${repoId}: the repository has no ${SINGLE_WEIGHTS} or ${WEIGHTS_INDEX} (qwenvl reads safetensors weights only)`);
}

/** The shard names a safetensors index lists, checked to be plain file names in the repository root. */
export function shardsOf(indexText: string, where: string): string[] {
  let json: unknown;
  try {
    json = JSON.parse(indexText);
  } catch (e) {
    throw new QwenVLError('E_MODEL_FORMAT', `${where}: not JSON (${(e as Error).message})`);
  }
  const map = (json as { weight_map?: unknown } | null)?.weight_map;
  if (map === null || typeof map !== 'object' || Array.isArray(map)) throw new QwenVLError('E_MODEL_FORMAT', `${where}: weight_map must be an object`);
  const shards = new Set<string>();
  for (const v of Object.values(map as Record<string, unknown>)) {
    if (typeof v !== 'string' || !/^[\w.-]+\.safetensors$/.test(v) || v.startsWith('.')) {
      throw new QwenVLError('E_MODEL_FORMAT', `${where}: weight_map names a bad shard file ${JSON.stringify(v)}`);
    }
    shards.add(v);
  }
  if (shards.size === 0) throw new QwenVLError('E_MODEL_FORMAT', `${where}: weight_map is empty`);
  return [...shards].sort();
}
