// The KV pool's bf16 storage, measured against the transformers reference of every family's
// fixture cases: the prefill's last logits (max |ours − ref| / max |ref|, the conformance measure,
// whose f32 budget is 1e-4) and the greedy tokens. f32 storage must stay within the conformance
// budget with identical tokens; bf16 has its own, looser budget (keys and values rounded once).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel, type Model } from '../../lib/index.js';
import { resolveGenerateOptions } from '../../lib/generate/options.js';
import { openSafetensors } from '../../lib/io/safetensors.js';
import { RequestCancel } from '../../lib/model/cancel.js';
import { encodePrepared, prefillArgs, tokenLoop, type LoopContext } from '../../lib/model/generate.js';
import { native } from '../../lib/native/binding.js';
import { checkpointDir, FAMILIES, fixtureDir } from '../helpers/fixtures.js';

// Measured on these fixtures (the logged table): bf16 storage puts the last logits 2e-3 .. 9.3e-3 of
// max |ref| away (f32: <= 2.2e-5), and greedy tokens of the random-weight fixtures, full of near
// ties, part from the reference in 3 of 11 cases (after 7, 13 and 14 of 16 tokens). The budget
// is twice the worst measured. bf16 stays opt-in; f32 is the default for exactness.
const BF16_BUDGET = 2e-2;

interface Meta {
  conversations: { role: string; content: string | { type: string; text?: string }[] }[][];
  images: string[];
  videos: string[];
  generated_ids: number[][];
  generation: { repetition_penalty: number; eos_token_id: number[] };
}

const models: Model[] = [];
afterAll(() => models.forEach((m) => m.dispose()));

function withImages(meta: Meta, root: string) {
  let i = 0;
  return meta.conversations.map((conv) =>
    conv.map((msg) =>
      Array.isArray(msg.content)
        ? { ...msg, content: msg.content.map((part) => (part.type === 'image' ? { ...part, image: join(root, meta.images[i++]) } : part)) }
        : msg,
    ),
  );
}

describe('KV storage dtype against the reference', () => {
  for (const family of FAMILIES) {
    it(family, async () => {
      const model = await loadModel(checkpointDir(family), { threads: 1 });
      models.push(model);
      const internals = model as unknown as { loopContext(c: RequestCancel): LoopContext; generationDefaults: Parameters<typeof resolveGenerateOptions>[1] };
      const rows: string[] = [];
      const checks: (() => void)[] = [];
      for (const name of readdirSync(join(fixtureDir(family), 'cases')).sort()) {
        const dir = join(fixtureDir(family), 'cases', name);
        const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as Meta;
        if (meta.videos.length > 0) continue; // the image and text cases are enough to measure storage
        const ref = await openSafetensors(join(dir, 'tensors.safetensors'));
        const want = ref.get('logits_last').toFloat32();
        const p = await model.prepare(withImages(meta, fixtureDir(family)) as Parameters<Model['prepare']>[0]);
        for (const kvDtype of ['f32', 'bf16'] as const) {
          const ctx = { ...internals.loopContext(new RequestCancel('test')), kvDtype };
          const vision = await encodePrepared(ctx, p);
          const session = native.modelNewSession(ctx.handle, p.batchSize, p.seqLength, { kvDtype });
          const got = new Float32Array((await native.sessionForward(session, prefillArgs(ctx, p, vision, 'last'))).logits!.data);
          native.disposeHandle(session);
          let maxAbs = 0, maxRef = 0;
          for (let i = 0; i < want.length; i++) {
            maxAbs = Math.max(maxAbs, Math.abs(got[i] - want[i]));
            maxRef = Math.max(maxRef, Math.abs(want[i]));
          }
          const rel = maxAbs / maxRef;
          const o = resolveGenerateOptions(
            { maxTokens: meta.generated_ids[0].length, doSample: false, repetitionPenalty: meta.generation.repetition_penalty, eosTokenIds: meta.generation.eos_token_id },
            internals.generationDefaults,
          );
          const tokens: number[][] = Array.from({ length: p.batchSize }, () => []);
          for await (const s of tokenLoop(ctx, p, o, () => false)) s.tokens.forEach((t, b) => t >= 0 && tokens[b].push(t));
          let same = 0, total = 0;
          tokens.forEach((row, b) => {
            const ref = meta.generated_ids[b];
            let k = 0;
            while (k < ref.length && row[k] === ref[k]) k++;
            same += k;
            total += ref.length;
          });
          rows.push(`${family} ${name} kv=${kvDtype}: logits rel err ${rel.toExponential(2)}, greedy tokens matching the reference before the first difference ${same}/${total}`);
          checks.push(() => {
            if (kvDtype === 'f32') {
              expect(rel).toBeLessThan(1e-4);
              expect(tokens).toEqual(meta.generated_ids);
            } else {
              expect(rel).toBeLessThan(BF16_BUDGET);
            }
          });
        }
      }
      console.log(rows.join('\n'));
      checks.forEach((c) => c());
    }, 120_000);
  }
});
