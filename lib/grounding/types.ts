/**
 * The shapes of grounding: the images and videos a reply's boxes and points refer to, and what
 * {@link parseGrounding} returns.
 * @module
 */

/**
 * One image of a request, as the processor saw it. The original size is the decoded image's
 * (after its EXIF orientation); the resized size is what the processor resized it to
 * (`smart_resize` under the request's `minPixels` / `maxPixels`). {@link PreparedInputs.imageSizes}
 * holds both for every image of a prepared request.
 */
export interface GroundingImage {
  /** Width of the original image in pixels. */
  originalWidth: number;
  /** Height of the original image in pixels. */
  originalHeight: number;
  /** Width the processor resized it to; needed by Qwen2.5-VL, whose replies are in these pixels. */
  resizedWidth?: number;
  /** Height the processor resized it to; needed by Qwen2.5-VL. */
  resizedHeight?: number;
}

/**
 * One video of a request, as the processor saw it: the size of its frames as decoded (a file's
 * stored frames; a frame list's first frame) and the size the processor resized every frame to
 * (under the video's own pixel budget, not the images'). {@link PreparedInputs.videoSizes} holds
 * both for every video of a prepared request.
 */
export interface GroundingVideo {
  /** Width of the original frames in pixels. */
  originalWidth: number;
  /** Height of the original frames in pixels. */
  originalHeight: number;
  /** Width the processor resized the frames to; needed by Qwen2.5-VL, whose replies are in these pixels. */
  resizedWidth?: number;
  /** Height the processor resized the frames to; needed by Qwen2.5-VL. */
  resizedHeight?: number;
}

/**
 * A box or a point the model named, in pixels of the ORIGINAL image or video frame: x to the
 * right and y down from its top-left corner, as real numbers (not rounded), inside
 * [0, width] × [0, height]. Exactly one of `image` and `video` is set.
 */
export interface GroundingItem {
  /** What the model called it (`label`, or the text of a text-spotting reply), when it said. */
  label?: string;
  /** `[x1, y1, x2, y2]` with x1 < x2 and y1 < y2 (swapped corners are put right). */
  box?: [number, number, number, number];
  /** `[x, y]`. */
  point?: [number, number];
  /** Which image of the request (0-based, in the order the images appear in the conversation); absent on a video. */
  image?: number;
  /** Which video of the request (0-based, in the order the videos appear); absent on an image. */
  video?: number;
  /**
   * The time in seconds the reply gave for it (`"time": 2.5`, `"2.5s"`, `"00:02.5"`, as the Qwen3-VL
   * video grounding cookbook asks for: `[{"time": 1.0, "bbox_2d": [...]}, ...]`), as written.
   */
  time?: number;
  /** The frame number the reply gave for it (`"frame": 12`), as written (which frames it counts is the prompt's business). */
  frame?: number;
}

/** What {@link parseGrounding} found: the items, and why anything else was left out. */
export interface GroundingResult {
  /** The boxes and points, in the order they appear in the reply. */
  items: GroundingItem[];
  /** One line per thing skipped or changed (truncated object, bad coordinates, clamped, …). */
  warnings: string[];
}

/** A box or point as the reply wrote it, before mapping to the original image. @internal */
export interface RawGrounding {
  /** Where it starts in the reply (for ordering and messages). */
  offset: number;
  label?: string;
  /** `[x1, y1, x2, y2]` in the family's coordinates. */
  box?: number[];
  /** `[x, y]` in the family's coordinates. */
  point?: number[];
  /** The image the reply named for it (0-based), if it named one. */
  image?: number;
  /** The video the reply named for it (0-based), if it named one. */
  video?: number;
  /** Seconds and frame number, when the reply gave them. */
  time?: number;
  frame?: number;
}
