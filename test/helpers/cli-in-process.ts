/**
 * The CLI run in this process with its output captured: commands that stream (chat) write to
 * process.stdout / stderr directly, so those are captured along with the io the CLI is given.
 */
import { vi } from 'vitest';
import { main } from '../../lib/cli/run.js';

export async function runCliCaptured(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = '', stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((t) => ((stdout += String(t)), true));
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((t) => ((stderr += String(t)), true));
  try {
    const status = await main(args, new AbortController().signal, { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t) });
    return { status, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}
