/**
 * One incarnation of a media worker seen from the main isolate (the RTP worker, the room forward workers):
 * the Worker, its typed messages and the requests waiting for its replies. Every worker protocol here shares
 * three messages — `ready` (its modules loaded), `log` (a line for the main logger) and `reply` (to a numbered
 * request) — handled once here; everything else goes to `onEvent`. A crash or an unreadable message goes to
 * `onFail` once. `close(err)` terminates the worker and rejects what still waits with `err`; after it, nothing
 * from this incarnation reaches the handle (a replacement gets a link of its own).
 */
import type { Logger } from "./log.ts";
import type { WorkerLiveness } from "./worker_liveness.ts";

export type LinkEvent =
  | { type: "ready" }
  | { type: "log"; level: "debug" | "info" | "warn" | "error"; msg: string; fields?: Record<string, unknown> }
  | { type: "reply"; req: number };

/** A command that asks for a reply, without the number the link gives it. */
export type RequestOf<C> = C extends { req: number } ? Omit<C, "req"> : never;

export interface WorkerLinkOptions<E> {
  /** Names the worker in failure reasons ("rtp worker crashed: …"). */
  name: string;
  log: Logger;
  liveness: WorkerLiveness;
  onEvent: (e: E) => void;
  onFail: (reason: string) => void;
}

export class WorkerLink<C extends { type: string }, E extends { type: string }> {
  readonly #worker: Worker;
  readonly #o: WorkerLinkOptions<Exclude<E, LinkEvent>>;
  readonly #pending = new Map<
    number,
    { resolve: (r: Extract<E, { type: "reply" }>) => void; reject: (e: Error) => void }
  >();
  #nextReq = 1;
  #closed = false;

  constructor(worker: Worker, o: WorkerLinkOptions<Exclude<E, LinkEvent>>) {
    this.#worker = worker;
    this.#o = o;
    o.liveness.start();
    worker.onmessage = (e: MessageEvent<E>) => {
      if (!this.#closed) this.#onMessage(e.data);
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      if (!this.#closed) o.onFail(`${o.name} crashed: ${e.message}`);
    };
    worker.onmessageerror = () => {
      if (!this.#closed) o.onFail(`${o.name} message could not be read`);
    };
  }

  /** Requests still waiting for their reply. */
  get pending(): number {
    return this.#pending.size;
  }

  post(cmd: C, transfer: Transferable[] = []): void {
    if (!this.#closed) this.#worker.postMessage(cmd, transfer);
  }

  /** Post `cmd` with the next request number; resolves with the worker's reply, whatever it says. */
  request(cmd: RequestOf<C>): Promise<Extract<E, { type: "reply" }>> {
    if (this.#closed) return Promise.reject(new Error(`${this.#o.name} link closed`));
    const req = this.#nextReq++;
    return new Promise((resolve, reject) => {
      this.#pending.set(req, { resolve, reject });
      this.#worker.postMessage({ ...cmd, req });
    });
  }

  /**
   * A polite shutdown: post `cmd` (the worker releases what it holds and replies) and wait for the reply at
   * most `timeoutMs`. The link stays open: close() it after.
   */
  async drain(cmd: RequestOf<C>, timeoutMs: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.request(cmd).catch(() => {}),
      new Promise<void>((r) => (timer = setTimeout(r, timeoutMs))),
    ]);
    clearTimeout(timer);
  }

  #onMessage(m: E): void {
    this.#o.liveness.heard();
    const shared = m as unknown as LinkEvent;
    switch (shared.type) {
      case "ready":
        this.#o.liveness.markReady();
        return;
      case "log":
        this.#o.log[shared.level](shared.msg, shared.fields);
        return;
      case "reply": {
        const p = this.#pending.get(shared.req);
        this.#pending.delete(shared.req);
        p?.resolve(m as Extract<E, { type: "reply" }>);
        return;
      }
    }
    this.#o.onEvent(m as Exclude<E, LinkEvent>);
  }

  /** Terminate the worker; waiting requests reject with `err`. Idempotent. */
  close(err: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#o.liveness.stop();
    this.#worker.terminate();
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.reject(err);
  }
}
