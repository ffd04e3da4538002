/**
 * Where the language model's large weights live ({@link LoadOptions.placement}) and the read
 * bandwidths measured to choose it.
 * @module
 */
import type { LoadOptions } from './load.js';

/**
 * Where weights can live: `'mmap'` the checkpoint file's pages in the page cache, mapped as
 * stored (nothing copied); `'owned'` memory the process owns in 4 KiB pages; `'huge'` owned
 * memory in transparent huge pages (2 MiB).
 */
export type WeightPlacement = 'mmap' | 'owned' | 'huge';

/** The values of {@link LoadOptions.placement}. */
export const PLACEMENT_CHOICES = ['auto', 'mmap', 'owned', 'huge'] as const;

/**
 * The placement probe: the compute threads read a buffer of each placement with decode's access
 * pattern (each thread streaming its own contiguous share, the buffer flushed from the caches
 * first), in alternating rounds. A load whose largest language-model tensor is at least `bytes`
 * long measures with that tensor's mapped pages as the `mmap` buffer (how the page cache holds a
 * file, 4 KiB pages or large folios the kernel maps 2 MiB at a time, depends on how the file got
 * there); smaller checkpoints share one measurement per process, made with a file of its own.
 */
export interface PlacementProbe {
  /** The best round of each placement, GB/s; `huge` is absent where transparent huge pages are off. */
  readGBps: Partial<Record<WeightPlacement, number>>;
  /** Every round of each placement, GB/s (their spread shows how noisy the machine was). */
  runs: Partial<Record<WeightPlacement, number[]>>;
  /** The placement with the highest `readGBps`. */
  fastest: WeightPlacement;
  /** The mode in /sys/kernel/mm/transparent_hugepage/enabled ('always', 'madvise', 'never', or 'unknown'). */
  transparentHugePages: string;
  /**
   * The file whose mapped pages gave the `mmap` figure: the checkpoint file the load measured, or
   * else the folder the probe's own file was made in ('memfd': in memory; '': none could be made,
   * no `mmap` figure).
   */
  mappedFrom: string;
  /** Bytes of each placement's buffer. */
  bytes: number;
  /** Threads that read. */
  threads: number;
  /** How long the probe took, buffers made and freed included. */
  seconds: number;
}

/** Where a model's language-model weights are, what was asked, and the probe behind the choice. */
export interface PlacementReport {
  /** {@link LoadOptions.placement} as given (`'auto'` by default). */
  requested: (typeof PLACEMENT_CHOICES)[number];
  /**
   * Where the language model's linear weights are. Weights quantized at load (`weights: 'q8'`,
   * `'q4'`) are always owned: `'owned'` or `'huge'`. `'other'` should not occur (memory that is
   * neither mapped nor owned).
   */
  used: WeightPlacement | 'other';
  /** The probe the choice was made by. */
  probe: PlacementProbe;
}
