/**
 * pullModel(): a Hugging Face Hub model id -> a snapshot folder in the shared Hub cache holding
 * the files {@link loadModel} reads.
 * @module
 */
import { readFile } from 'node:fs/promises';
import { QwenVLError, inputError } from '../errors.js';
import { COMMIT_RE, RepoCache, isRepoId } from './cache.js';
import { checkableEtag, downloadBlob } from './download.js';
import { MODEL_FILES, REQUIRED_FILES, SINGLE_WEIGHTS, WEIGHTS_INDEX, selectFiles, shardsOf } from './files.js';
import { getJson, headFile } from './http.js';
import { withLock } from './lock.js';
import { eachBounded } from './parallel.js';
import { publicCallAsync } from '../validate.js';
import { ProgressTracker } from './progress.js';
import { hubSettings, type HubOptions, type HubSettings } from './settings.js';

/** What {@link pullModel} produced. */
export interface PulledModel {
  repoId: string;
  /** The revision asked for and the commit it resolved to. */
  revision: string;
  commit: string;
  /** The snapshot folder (`<cache>/models--org--name/snapshots/<commit>`): pass it to `loadModel`. */
  dir: string;
  /** The repository paths of the model's files in the snapshot. */
  files: string[];
  /** Bytes fetched over the network by this call (0 when the cache had everything). */
  downloadedBytes: number;
  /** Whether the Hub was asked at all (false: answered from the cache). */
  online: boolean;
}

interface Sibling {
  path: string;
  size: number | undefined;
  etag: string | undefined;
}

function quotePath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

/** The repository's commit and files at `revision`, from `/api/models/<id>/revision/<rev>?blobs=true`. */
async function listRevision(repoId: string, s: HubSettings): Promise<{ commit: string; siblings: Map<string, Sibling> }> {
  const url = `${s.endpoint}/api/models/${repoId}/revision/${encodeURIComponent(s.revision)}?blobs=true`;
  const json = (await getJson(url, s.token, `${repoId}@${s.revision}`, s.signal)) as { sha?: unknown; siblings?: unknown } | null;
  const commit = json?.sha;
  if (typeof commit !== 'string' || !COMMIT_RE.test(commit) || !Array.isArray(json?.siblings)) {
    throw new QwenVLError('E_NETWORK', `${repoId}@${s.revision}: the Hub's model info has no commit sha or file list`);
  }
  const siblings = new Map<string, Sibling>();
  for (const raw of json.siblings as unknown[]) {
    const r = raw as { rfilename?: unknown; size?: unknown; blobId?: unknown; lfs?: { sha256?: unknown; oid?: unknown; size?: unknown } | null };
    if (typeof r?.rfilename !== 'string') continue;
    const lfsSha = typeof r.lfs?.sha256 === 'string' ? r.lfs.sha256 : typeof r.lfs?.oid === 'string' ? r.lfs.oid.replace(/^sha256:/, '') : undefined;
    const size = typeof r.lfs?.size === 'number' ? r.lfs.size : typeof r.size === 'number' ? r.size : undefined;
    const etag = lfsSha ?? (typeof r.blobId === 'string' ? r.blobId : undefined);
    // The etag names a file in blobs/: only a hex digest is taken (else the file's HEAD says).
    siblings.set(r.rfilename, { path: r.rfilename, size, etag: etag !== undefined && checkableEtag(etag) ? etag : undefined });
  }
  return { commit, siblings };
}

/** The model files a cached snapshot has, and the needed ones it lacks (none: it can be loaded as is). */
async function scanSnapshot(cache: RepoCache, commit: string): Promise<{ present: string[]; missing: string[] }> {
  const present: string[] = [];
  const missing: string[] = [];
  for (const f of MODEL_FILES) {
    if (await cache.hasFile(commit, f)) present.push(f);
    else if ((REQUIRED_FILES as readonly string[]).includes(f)) missing.push(f);
  }
  if (await cache.hasFile(commit, WEIGHTS_INDEX)) {
    present.push(WEIGHTS_INDEX);
    let shards: string[];
    try {
      shards = shardsOf(await readFile(cache.snapshotFile(commit, WEIGHTS_INDEX), 'utf8'), cache.snapshotFile(commit, WEIGHTS_INDEX));
    } catch {
      return { present, missing: [...missing, `a readable ${WEIGHTS_INDEX}`] };
    }
    for (const f of shards) ((await cache.hasFile(commit, f)) ? present : missing).push(f);
  } else if (await cache.hasFile(commit, SINGLE_WEIGHTS)) {
    present.push(SINGLE_WEIGHTS);
  } else {
    missing.push(`${SINGLE_WEIGHTS} (or ${WEIGHTS_INDEX} and its shards)`);
  }
  return { present, missing };
}

/** Makes one file present in the snapshot, downloading its blob unless the cache has it. */
async function ensureFile(cache: RepoCache, commit: string, sib: Sibling, s: HubSettings, progress: ProgressTracker): Promise<void> {
  const label = `${cache.repoId}@${commit.slice(0, 12)}: ${sib.path}`;
  if (sib.etag !== undefined && sib.size !== undefined && (await cache.hasBlob(sib.etag, sib.size))) {
    await cache.link(commit, sib.path, sib.etag);
    progress.bytes += sib.size;
    progress.filesDone++;
    progress.report('file', { path: sib.path, bytes: sib.size, size: sib.size, fromCache: true });
    return;
  }
  const resolveUrl = `${s.endpoint}/${cache.repoId}/resolve/${commit}/${quotePath(sib.path)}`;
  const meta = await headFile(resolveUrl, s.token, label, s.signal);
  if (meta.commit !== undefined && meta.commit !== commit) {
    throw new QwenVLError('E_NETWORK', `${label}: resolved at commit ${meta.commit}, expected ${commit}`);
  }
  const etag = meta.etag ?? sib.etag;
  const size = meta.size ?? sib.size;
  if (etag === undefined || !checkableEtag(etag)) throw new QwenVLError('E_NETWORK', `${label}: the Hub sent no usable ETag (${etag ?? 'none'})`);
  if (size === undefined) throw new QwenVLError('E_NETWORK', `${label}: the Hub sent no size`);
  if ((sib.etag !== undefined && sib.etag !== etag) || (sib.size !== undefined && sib.size !== size)) {
    throw new QwenVLError('E_NETWORK', `${label}: the file list says ${sib.etag}/${sib.size} bytes, the file ${etag}/${size} bytes`);
  }
  if (sib.size === undefined) progress.totalBytes += size;
  const wait = { signal: s.signal, timeoutMs: s.lockTimeoutMs, onWait: () => progress.report('wait', { path: sib.path, bytes: 0, size }) };
  await withLock(cache.lock(etag), cache.pidLock(etag), wait, async () => {
    // Checked again under the lock: another pull may have fetched it meanwhile.
    if (await cache.hasBlob(etag, size)) {
      progress.bytes += size;
      return;
    }
    const sameHost = new URL(meta.location).host === new URL(s.endpoint).host;
    await downloadBlob({ path: sib.path, etag, size, url: meta.location, sendToken: sameHost }, cache.blob(etag), s.token, progress, s.signal, s.retries, s.downloadTimeoutMs);
  });
  await cache.link(commit, sib.path, etag);
  progress.filesDone++;
  progress.report('file', { path: sib.path, bytes: size, size, fromCache: false });
}

/**
 * Fetches a model's files from the Hugging Face Hub into the Hub cache that Python's
 * `huggingface_hub` uses (`HF_HUB_CACHE` / `$HF_HOME/hub`), reusing whatever is there, and returns
 * the snapshot folder. Only the files a model needs are fetched: config.json, the safetensors
 * weights (only the shards the index lists), the tokenizer, processor and generation configs and
 * the chat template, several at once (`concurrency`). Interrupted downloads resume; every file is
 * verified before it is used.
 *
 * @param repoId `org/name`, e.g. `Qwen/Qwen2.5-VL-3B-Instruct`.
 * @throws QwenVLError E_INPUT for a bad id or option; E_NOT_FOUND for a repository, revision or file
 *   the Hub does not have, or, offline, what the cache lacks; E_AUTH for a gated or private
 *   repository without an accepted token; E_NETWORK when the Hub cannot be reached or the
 *   connection breaks; E_INTEGRITY for a file whose checksum does not match; E_ABORTED.
 */
export async function pullModel(repoId: string, options?: HubOptions): Promise<PulledModel> {
  return publicCallAsync('pullModel', arguments, async () => {
    if (typeof repoId !== 'string' || !isRepoId(repoId)) throw inputError(`pullModel: expected a Hub model id 'org/name', got ${JSON.stringify(repoId)}`);
    const s = hubSettings(options, 'pullModel: options');
    try {
      return await pull(repoId, s);
    } catch (e) {
      if (e instanceof QwenVLError) throw e;
      // What is left is the file system (a cache folder that cannot be written, a full disk).
      const err = e as NodeJS.ErrnoException;
      throw new QwenVLError('E_INPUT', `pullModel: Hub cache ${s.cacheDir}: ${err.code ?? ''} ${err.message}`.replace(/ {2,}/g, ' '), { cause: e });
    }
  });
}

async function pull(repoId: string, s: HubSettings): Promise<PulledModel> {
  const cache = new RepoCache(s.cacheDir, repoId);
  const progress = new ProgressTracker(repoId, s.onProgress);

  if (s.offline || s.preferCache) {
    const commit = await cache.commitOf(s.revision);
    const { present, missing } = commit === undefined ? { present: [], missing: [`refs/${s.revision}`] } : await scanSnapshot(cache, commit);
    if (commit !== undefined && missing.length === 0) {
      progress.commit = commit;
      progress.report('done');
      return { repoId, revision: s.revision, commit, dir: cache.snapshotDir(commit), files: present, downloadedBytes: 0, online: false };
    }
    if (s.offline) {
      const where = commit === undefined ? `no cached revision '${s.revision}'` : `snapshot ${commit} lacks ${missing.join(', ')}`;
      throw new QwenVLError('E_NOT_FOUND', `${repoId}: offline (HF_HUB_OFFLINE) and the cache ${cache.root} has ${where}`);
    }
  }

  progress.report('resolve');
  const { commit, siblings } = await listRevision(repoId, s);
  progress.commit = commit;
  await cache.writeRef(s.revision, commit);
  const { files, index } = selectFiles(repoId, [...siblings.keys()]);
  const sib = (path: string): Sibling => {
    const x = siblings.get(path);
    if (!x) throw new QwenVLError('E_NOT_FOUND', `${repoId}@${commit.slice(0, 12)}: ${path} is listed in the weights index but not in the repository`);
    return x;
  };
  // The index first (it is small): its shards complete the list and the byte total.
  if (index) {
    progress.fileCount = 1;
    progress.totalBytes = sib(WEIGHTS_INDEX).size ?? 0;
    await ensureFile(cache, commit, sib(WEIGHTS_INDEX), s, progress);
    const indexPath = cache.snapshotFile(commit, WEIGHTS_INDEX);
    files.push(...shardsOf(await readFile(indexPath, 'utf8'), indexPath));
  }
  const rest = files.filter((f) => f !== WEIGHTS_INDEX).map(sib);
  progress.fileCount = rest.length + (index ? 1 : 0);
  progress.totalBytes += rest.reduce((n, f) => n + (f.size ?? 0), 0);
  await eachBounded(rest, s.concurrency, s.signal, (f, signal) => ensureFile(cache, commit, f, { ...s, signal }, progress));
  progress.report('done');
  return { repoId, revision: s.revision, commit, dir: cache.snapshotDir(commit), files, downloadedBytes: progress.transferred, online: true };
}
