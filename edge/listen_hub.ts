/**
 * Waiting for a TTS job's next change across every stream this edge process serves: one LISTEN on
 * `parley_tts_job` per database (payload = job id), fanned out to the waiters of that job. A notification is
 * only a wake-up (the waiter reads the rows itself) and a reconnect wakes every waiter, so a lost notification
 * costs latency, never data.
 */
import type { Database } from "../db/client.ts";
import { JOB_CHANNEL } from "../db/tts_jobs.ts";

/** NOTIFY on `parley_tts_job` (payload = job id), or a timeout (poll). */
export class JobWatch {
  readonly #waiters = new Map<string, Set<() => void>>();
  #subscribed?: Promise<unknown>;
  constructor(private readonly database: Database) {}

  #fire(jobId: string): void {
    const set = this.#waiters.get(jobId);
    if (!set) return;
    this.#waiters.delete(jobId);
    for (const f of set) f();
  }

  #fireAll(): void {
    for (const id of [...this.#waiters.keys()]) this.#fire(id);
  }

  /** Resolves at the job's next NOTIFY, after `ms`, or when `signal` aborts. */
  async wait(jobId: string, ms: number, signal: AbortSignal): Promise<void> {
    this.#subscribed ??= this.database.listen(JOB_CHANNEL, (id) => this.#fire(id), () => this.#fireAll())
      .catch(() => undefined); // no LISTEN → the timeout poll still works
    await this.#subscribed;
    if (signal.aborted) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        this.#waiters.get(jobId)?.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done, { once: true });
      let set = this.#waiters.get(jobId);
      if (!set) this.#waiters.set(jobId, set = new Set());
      set.add(done);
    });
  }
}

const watches = new WeakMap<Database, JobWatch>();

/** The process-wide watch of a database (created on first use). */
export function jobWatchOf(database: Database): JobWatch {
  let w = watches.get(database);
  if (!w) watches.set(database, w = new JobWatch(database));
  return w;
}
