// Atomic file writes with node:fs: write a temp file next to the target, fsync it, rename it over the
// target, fsync the directory. rename(2) within one directory replaces the name atomically, so a
// reader (or a crash at any point) sees the old file or the new one, never a part of either.
//
// npm's write-file-atomic was considered: its current major (8) needs Node >= 22.22 (rnnkit supports
// Node >= 18) and it does not fsync the directory, so the rename itself could be lost on a power cut.
//
// Temp files are named `.<name>.tmp-<pid>-<12 hex digits>` in the target's directory. A process that
// is killed (SIGKILL, a power cut) while writing leaves its temp file behind; the target is intact.
// Such leftovers start with '.' and contain '.tmp-', so a loader listing a directory can ignore them
// (see isAtomicTempFile) and a cleanup can remove them.
import {
  closeSync, fsyncSync, openSync, realpathSync, renameSync, statSync, unlinkSync, writeSync, fchmodSync,
} from 'node:fs';
import { open, realpath, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';

/** Bytes handed to one write call; a large file is written in several (so none hits a syscall limit). */
const CHUNK = 8 << 20;

/** Errors of fsync on a directory that mean "not supported here" (Windows, some file systems), not a failed write. */
const DIR_SYNC_UNSUPPORTED = new Set(['EISDIR', 'EINVAL', 'EPERM', 'EACCES', 'ENOTSUP', 'EBADF']);

/**
 * Whether `name` (a file name, not a path) is a temp file of writeFileAtomic / writeFileAtomicSync:
 * `.<target>.tmp-<pid>-<hex>`. Such a file is left behind only by a process that died while writing.
 */
export function isAtomicTempFile(name: string): boolean {
  return /^\..+\.tmp-\d+-[0-9a-f]{12}$/.test(name);
}

function tempPathFor(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
}

function toBytes(data: Uint8Array | string): Uint8Array {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (data instanceof Uint8Array) return data;
  throw new TypeError(`writeFileAtomic: data must be a Uint8Array or a string, got ${typeof data}`);
}

/** The file a rename must replace: the target of `p` when it is a symlink, else `p`. */
async function resolveTarget(p: string): Promise<string> {
  try {
    return await realpath(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return p;
    throw e;
  }
}

function resolveTargetSync(p: string): string {
  try {
    return realpathSync(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return p;
    throw e;
  }
}

/** The permission bits of the existing file, or undefined when there is none (then the umask applies). */
async function existingMode(p: string): Promise<number | undefined> {
  try {
    return (await stat(p)).mode & 0o7777;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

function existingModeSync(p: string): number | undefined {
  try {
    return statSync(p).mode & 0o7777;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

function ignorableDirSyncError(e: unknown): boolean {
  return process.platform === 'win32' || DIR_SYNC_UNSUPPORTED.has((e as NodeJS.ErrnoException).code ?? '');
}

async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch (e) {
    if (!ignorableDirSyncError(e)) throw e;
  } finally {
    await handle?.close();
  }
}

function syncDirectorySync(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch (e) {
    if (!ignorableDirSyncError(e)) throw e;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Writes data to path atomically: a temp file in the same directory, fsync, rename over path, fsync
 * the directory. A crash mid-write leaves the old file intact.
 *
 * A string is written as UTF-8. An existing file keeps its permission bits (not its owner); a new one
 * gets 0o666 minus the umask. When path is a symlink, the file it points to is replaced (the link
 * stays). Concurrent writers to one path each write their own temp file; the last rename wins and
 * every reader sees one complete version. On an error the temp file is removed and the error is
 * rethrown; a process killed while writing leaves its temp file `.<name>.tmp-<pid>-<hex>` behind (see
 * isAtomicTempFile). Directory fsync is skipped where the platform does not support it (Windows).
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const bytes = toBytes(data);
  const target = await resolveTarget(path);
  const mode = await existingMode(target);
  const tmp = tempPathFor(target);
  let handle: FileHandle | undefined = await open(tmp, 'wx', 0o666);
  try {
    if (mode !== undefined) await handle.chmod(mode);
    for (let at = 0; at < bytes.length;) {
      const { bytesWritten } = await handle.write(bytes, at, Math.min(CHUNK, bytes.length - at));
      at += bytesWritten;
    }
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(tmp, target);
  } catch (e) {
    await handle?.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await syncDirectory(pathDirname(target));
}

/** Synchronous writeFileAtomic: the same steps and guarantees, blocking the thread. */
export function writeFileAtomicSync(path: string, data: Uint8Array | string): void {
  const bytes = toBytes(data);
  const target = resolveTargetSync(path);
  const mode = existingModeSync(target);
  const tmp = tempPathFor(target);
  let fd: number | undefined = openSync(tmp, 'wx', 0o666);
  try {
    if (mode !== undefined) fchmodSync(fd, mode);
    for (let at = 0; at < bytes.length;) at += writeSync(fd, bytes, at, Math.min(CHUNK, bytes.length - at));
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, target);
  } catch (e) {
    if (fd !== undefined) {
      try { closeSync(fd); } catch { /* already failing */ }
    }
    try { unlinkSync(tmp); } catch { /* best effort */ }
    throw e;
  }
  syncDirectorySync(pathDirname(target));
}

// The exported functions' parameter is named `path` (the documented API), which shadows the module.
function pathDirname(p: string): string {
  return path.dirname(p);
}
