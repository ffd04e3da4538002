// How `qwenvl chat` prints a streamed reply's events.
import { describe, expect, it } from 'vitest';
import { ChatPrinter } from '../lib/cli/chat-output.js';
import type { ChatStreamEvent } from '../lib/index.js';

function print(events: ChatStreamEvent[], o: { dim?: boolean; showReasoning?: boolean } = {}) {
  let stdout = '', stderr = '';
  const p = new ChatPrinter({ stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), dim: o.dim ?? false, showReasoning: o.showReasoning ?? true });
  events.forEach((e) => p.event(e));
  p.end();
  return { stdout, stderr };
}
const call = { id: 'call_1', type: 'function' as const, function: { name: 'f', arguments: '{"a":1}' } };

describe('ChatPrinter', () => {
  it('dims the reasoning on a terminal and ends its line before the answer', () => {
    const r = print([{ type: 'reasoning', text: 'hm' }, { type: 'reasoning', text: ' ok' }, { type: 'text', text: 'Yes' }], { dim: true });
    expect(r.stderr).toBe('\x1b[2mhm\x1b[22m\x1b[2m ok\x1b[22m\n');
    expect(r.stdout).toBe('Yes\n');
  });

  it('a tool call starts its own line and ends it; no blank line after it', () => {
    expect(print([{ type: 'text', text: 'Checking.' }, { type: 'tool_call', index: 0, toolCall: call }]).stdout).toBe(`Checking.\n${JSON.stringify(call)}\n`);
    expect(print([{ type: 'tool_call', index: 0, toolCall: call }, { type: 'tool_call', index: 1, toolCall: call }]).stdout).toBe(`${JSON.stringify(call)}\n${JSON.stringify(call)}\n`);
  });

  it('a reply cut inside its reasoning still ends both lines; hidden reasoning prints nothing', () => {
    expect(print([{ type: 'reasoning', text: 'so' }])).toEqual({ stdout: '\n', stderr: 'so\n' });
    expect(print([{ type: 'reasoning', text: 'so' }, { type: 'text', text: 'A' }], { showReasoning: false })).toEqual({ stdout: 'A\n', stderr: '' });
  });
});
