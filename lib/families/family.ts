/**
 * The shape of a model family: what lib/families/<family>.ts exports and lib/families/registry.ts
 * lists. A family turns config.json into the normalised text and vision settings, with the
 * defaults of its transformers configuration classes.
 * @module
 */
import type { TextConfig, VisionConfig } from '../model/config.js';
import type { ConfigReader } from './fields.js';
import type { RopeIndexKind } from './rope-index.js';

/**
 * How a family's replies place boxes and points: `'relative-1000'`, on a 0–1000 grid over the
 * image whatever its size (Qwen2-VL, Qwen3-VL); `'resized-pixels'`, in pixels of the image as the
 * processor resized it (Qwen2.5-VL).
 */
export type GroundingCoordinates = 'relative-1000' | 'resized-pixels';

/** Where the text decoder's fields live in config.json. */
export type ConfigLayout = 'flat' | 'nested';

/** One model family (one transformers `model_type`). */
export interface FamilyDescriptor<Id extends string = string> {
  /** Stable family id used across qwenvl (fixture folders use the same names). */
  readonly id: Id;
  /** The `model_type` of config.json that selects this family. */
  readonly modelType: string;
  /** Human-readable name. */
  readonly displayName: string;
  /** transformers class names this family's checkpoints declare in `architectures`. */
  readonly architectures: readonly string[];
  /** Which variant of transformers' get_rope_index the family uses. */
  readonly ropeIndex: RopeIndexKind;
  /**
   * Whether transformers' last `hidden_states` entry of the decoder is taken after the final norm
   * (Qwen2-VL / Qwen2.5-VL) or is the last layer's raw output (Qwen3-VL, whose hidden states are
   * recorded by hooks on the decoder layers). Reference dumps follow this convention.
   */
  readonly lastHiddenIsNormed: boolean;
  /** The coordinates of the boxes and points in its replies (see lib/grounding/). */
  readonly groundingCoordinates: GroundingCoordinates;
  /** Reads the text decoder settings from the whole config.json. */
  parseText(root: ConfigReader): { text: TextConfig; layout: ConfigLayout };
  /** Reads the vision tower settings from `vision_config` (an empty section when absent). */
  parseVision(vision: ConfigReader): VisionConfig;
}
