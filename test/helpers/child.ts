/**
 * Runs a test body in a child process, so that a crash (a signal, an abort, a hang) fails one test
 * with what happened instead of killing the test runner. The child inherits the environment
 * (RNNKIT_ADDON and the sanitizer preload of scripts/sanitize.mjs included).
 */
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface ChildOptions {
  /** Extra arguments for node before the script (e.g. --expose-gc). */
  nodeArgs?: string[];
  env?: NodeJS.ProcessEnv;
  /** Milliseconds before the child is killed (a hang fails the test); default 120 s. */
  timeout?: number;
  /** Run the command through this prefix (e.g. prlimit … setpriv …). */
  prefix?: string[];
}

/** Runs `node [nodeArgs] --import tsx <script> [args]`. */
export function runNodeChild(script: string, args: string[], opts: ChildOptions = {}): SpawnSyncReturns<string> {
  const command = [...(opts.prefix ?? []), process.execPath, ...(opts.nodeArgs ?? []), '--import', 'tsx', script, ...args];
  return spawnSync(command[0], command.slice(1), {
    cwd: repoRoot,
    encoding: 'utf8',
    timeout: opts.timeout ?? 120_000,
    env: { ...process.env, ...opts.env },
    maxBuffer: 64 << 20,
  });
}

/** Asserts the child exited 0 by itself and printed `ok:`; returns that line. */
export function assertChildOk(res: SpawnSyncReturns<string>, what: string): string {
  const tail = (s: string | null) => (s ?? '').split('\n').slice(-25).join('\n');
  const how = res.error && (res.error as NodeJS.ErrnoException).code === 'ETIMEDOUT'
    ? 'timed out (hang?)'
    : res.signal ? `was killed by ${res.signal}` : `exited with ${res.status}`;
  assert.ok(res.status === 0 && !res.signal, `${what}: the child ${how}\n--- stdout\n${tail(res.stdout)}\n--- stderr\n${tail(res.stderr)}`);
  const line = res.stdout.split('\n').find((l) => l.startsWith('ok:'));
  assert.ok(line, `${what}: the child printed no ok line\n${tail(res.stdout)}\n${tail(res.stderr)}`);
  return line;
}

/**
 * The child side of a malformed-input case: runs `load`, which must throw an Error that `problem`
 * finds nothing wrong with (it returns a complaint, or undefined). Prints `ok: <name>: <message>`
 * (what assertChildOk looks for), or a `fail:` line and sets exit code 3 (loaded, a non-Error, or a
 * complaint).
 */
export async function reportRefusal(load: () => Promise<unknown>, problem: (e: Error) => string | undefined = () => undefined): Promise<void> {
  try {
    await load();
    console.log('fail: loaded without an error');
  } catch (e) {
    const complaint = e instanceof Error ? problem(e) : `threw a non-Error: ${String(e)}`;
    if (complaint === undefined) {
      console.log(`ok: ${(e as Error).name}: ${(e as Error).message.replace(/\n/g, ' ')}`);
      return;
    }
    console.log(`fail: ${complaint}`);
  }
  process.exitCode = 3;
}
