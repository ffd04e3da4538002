/**
 * The Hub cache as Python's `huggingface_hub` lays it out, so either side reuses what the other
 * fetched:
 *
 * ```
 * <cache>/models--<org>--<name>/
 *   blobs/<etag>                  file contents, named by sha256 (LFS) or git blob id (small files)
 *   blobs/<etag>.incomplete       a download in progress (resumed with an HTTP Range request)
 *   snapshots/<commit>/<path>     relative symlinks to ../../blobs/<etag>
 *   refs/<revision>               the commit a branch or tag pointed to when last fetched
 * ```
 * @internal
 * @module
 */
import { randomUUID } from 'node:crypto';
import { copyFile, lstat, mkdir, readFile, readlink, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, sep } from 'node:path';

/** A 40-hex git commit id. */
export const COMMIT_RE = /^[0-9a-f]{40}$/;

/** The repo ids accepted: `org/name` with the Hub's characters. */
export const REPO_ID_RE = /^[A-Za-z0-9][\w.-]{0,95}\/[A-Za-z0-9][\w.-]{0,95}$/;

/** Whether `s` reads as a Hub model id (`org/name`), not as a relative path. */
export function isRepoId(s: string): boolean {
  return REPO_ID_RE.test(s) && !s.includes('..') && !/(^|\/)(-|\.)/.test(s) && !s.endsWith('.');
}

/** One repository's folder in the cache. */
export class RepoCache {
  readonly root: string;

  constructor(cacheDir: string, readonly repoId: string) {
    this.root = join(cacheDir, `models--${repoId.replace('/', '--')}`);
  }

  /** The lock of a blob's download: huggingface_hub's own (`<cache>/.locks/models--org--name/<etag>.lock`). */
  lock(etag: string): string {
    return join(dirname(this.root), '.locks', basename(this.root), `${etag}.lock`);
  }

  /** The pid lock file used instead where the file system has no flock. */
  pidLock(etag: string): string {
    return join(dirname(this.root), '.locks', basename(this.root), `${etag}.qwenvl.lock`);
  }

  blob(etag: string): string {
    return join(this.root, 'blobs', etag);
  }

  snapshotDir(commit: string): string {
    return join(this.root, 'snapshots', commit);
  }

  snapshotFile(commit: string, path: string): string {
    return join(this.snapshotDir(commit), ...path.split('/'));
  }

  private refFile(revision: string): string {
    return join(this.root, 'refs', ...revision.split('/'));
  }

  /** The commit `revision` stands for in the cache: itself when it is a commit id, else refs/<revision>. */
  async commitOf(revision: string): Promise<string | undefined> {
    if (COMMIT_RE.test(revision)) return revision;
    try {
      const c = (await readFile(this.refFile(revision), 'utf8')).trim();
      return COMMIT_RE.test(c) ? c : undefined;
    } catch {
      return undefined;
    }
  }

  /** Records that `revision` (a branch or tag) points at `commit`; nothing for a commit id. */
  async writeRef(revision: string, commit: string): Promise<void> {
    if (revision === commit) return;
    const file = this.refFile(revision);
    let old: string | undefined;
    try {
      old = await readFile(file, 'utf8');
    } catch {
      old = undefined;
    }
    if (old === commit) return;
    await mkdir(dirname(file), { recursive: true });
    // No trailing newline: huggingface_hub reads the file as is.
    const tmp = `${file}.${randomUUID()}.tmp`;
    await writeFile(tmp, commit);
    await rename(tmp, file);
  }

  /** Whether the snapshot holds `path` and it resolves to a readable file. */
  async hasFile(commit: string, path: string): Promise<boolean> {
    try {
      return (await stat(this.snapshotFile(commit, path))).isFile();
    } catch {
      return false;
    }
  }

  /** Whether the blob is complete in the cache (its size when known). */
  async hasBlob(etag: string, size?: number): Promise<boolean> {
    try {
      const s = await stat(this.blob(etag));
      return s.isFile() && (size === undefined || s.size === size);
    } catch {
      return false;
    }
  }

  /** Points snapshots/<commit>/<path> at blobs/<etag> with a relative symlink, as huggingface_hub does. */
  async link(commit: string, path: string, etag: string): Promise<void> {
    const pointer = this.snapshotFile(commit, path);
    const target = relative(dirname(pointer), this.blob(etag)).split(sep).join('/');
    await mkdir(dirname(pointer), { recursive: true });
    try {
      const st = await lstat(pointer);
      if (st.isSymbolicLink() && (await readlink(pointer)) === target) return;
      await rm(pointer, { force: true });
    } catch {
      // absent: create it below
    }
    try {
      await symlink(target, pointer);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // Another pull linked it meanwhile: fine when it points at the same blob.
      if (code === 'EEXIST' && (await readlink(pointer).catch(() => undefined)) === target) return;
      // Where symlinks are not allowed (Windows without developer mode) huggingface_hub copies too.
      if (code !== 'EPERM') throw e;
      await copyFile(this.blob(etag), pointer);
    }
  }
}
