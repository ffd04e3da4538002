/**
 * Facts about the machine the peer benchmark ran on, and a probe of how much CPU other processes
 * took while a sample ran (the same measure node-llama-cpp's side prints), so a noisy number can be
 * told from a slow one.
 * @module
 */
import { cpus, totalmem } from 'node:os';
import { readFileSync } from 'node:fs';
import { native } from '../../lib/native/binding.js';

/** ISA flags that decide which kernels either engine can run. */
const FLAGS = ['avx2', 'fma', 'f16c', 'avx512f', 'avx512bw', 'avx512vl', 'avx512_vnni', 'avx512_bf16', 'avx_vnni', 'amx_tile', 'amx_bf16', 'amx_int8'];

/** CPU model, ISA flags present, logical CPUs and memory, one line each. */
export function machineFacts(): string[] {
  let model = cpus()[0]?.model ?? 'unknown', flags: string[] = [];
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    model = /^model name\s*:\s*(.*)$/m.exec(info)?.[1] ?? model;
    const have = new Set((/^flags\s*:\s*(.*)$/m.exec(info)?.[1] ?? '').split(/\s+/));
    flags = FLAGS.filter((f) => have.has(f));
  } catch {
    // not Linux: the brand from the native core below still says what ran
  }
  const ni = native.info();
  return [
    `cpu: ${model} (qwenvl sees "${ni.cpu.brand.trim()}", ${ni.cpu.physicalCores} physical cores, ${cpus().length} logical CPUs, ${(totalmem() / 2 ** 30).toFixed(0)} GiB)`,
    `isa: ${flags.join(' ') || 'unknown'}`,
    `qwenvl kernels: matmul ${ni.ops.matmul.chosen}${ni.ops.matmul.chosenByFormat ? ` (by format: ${Object.entries(ni.ops.matmul.chosenByFormat).map(([k, v]) => `${k} ${v}`).join(', ')})` : ''}; precision fast: matmul ${Object.entries(ni.fast.matmulByFormat).map(([k, v]) => `${k} ${v ?? 'exact'}`).join(', ')}, attention ${ni.fast.attention ?? 'exact'}`,
  ];
}

interface Probe { busy: number; own: number; t: number }

function probe(): Probe {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const u = process.cpuUsage();
  // user + nice + system + irq + softirq, in seconds (USER_HZ = 100)
  return { busy: (f[0] + f[1] + f[2] + f[5] + f[6]) / 100, own: (u.user + u.system) / 1e6, t: performance.now() / 1000 };
}

/**
 * Runs `fn` and returns its result with the % of the machine that processes other than this one
 * used meanwhile (child processes count as other: time llama.cpp children with their own probe).
 */
export async function withForeignLoad<T>(fn: () => Promise<T>): Promise<[T, number]> {
  let a: Probe | null = null;
  try {
    a = probe();
  } catch {
    // no /proc: no load figure
  }
  const r = await fn();
  if (!a) return [r, NaN];
  const b = probe();
  return [r, Math.max(0, (100 * (b.busy - a.busy - (b.own - a.own))) / ((b.t - a.t) * cpus().length))];
}
