/**
 * How long this edge has been able to reach the database without interruption. Registry liveness is read from
 * heartbeats in the database, and during an outage NO node can heartbeat: right after the database returns every
 * origin looks dead until its next heartbeat lands. So an edge judges a node dead (sweeps its sessions, answers
 * a DELETE without reaching it) only after it has itself been connected for longer than the node timeout plus one
 * heartbeat period: by then every live node has had time to heartbeat again.
 *
 * A probe (`select 1`) runs every `probeMs`; one that fails, or is still unanswered after `hungMs` (a hung
 * connection; a slow answer on a busy machine is not an outage), ends the connected stretch.
 */
import { sql } from "drizzle-orm";
import type { Database } from "../db/client.ts";
import type { Config } from "../lib/config.ts";
import type { Logger } from "../lib/log.ts";
import { registry } from "../lib/metrics.ts";

const outages = registry.counter(
  "parley_edge_database_outages_total",
  "Times this edge lost its database connection (a probe failed or hung)",
);

export class DatabaseWatch {
  #timer: ReturnType<typeof setInterval> | undefined;
  /** performance.now() when the unanswered probe was sent; undefined when none is in flight. */
  #inFlightSince: number | undefined;
  /** performance.now() since which every probe succeeded; undefined while disconnected. */
  #connectedSince: number | undefined;
  #closed = false;

  constructor(
    private readonly database: Database,
    private readonly log: Logger,
    readonly probeMs: number,
    readonly hungMs = Math.max(2000, 2 * probeMs),
  ) {
    // Start as "just connected": an edge that starts (or restarts) has no history to trust either.
    this.#connectedSince = performance.now();
    this.#timer = setInterval(() => this.probe(), probeMs);
  }

  /** ms of uninterrupted connectivity so far (0 while disconnected). */
  connectedForMs(): number {
    return this.#connectedSince === undefined ? 0 : performance.now() - this.#connectedSince;
  }

  /** One probe now (the timer calls this; tests may too). */
  async probe(): Promise<void> {
    if (this.#closed) return;
    if (this.#inFlightSince !== undefined) {
      if (performance.now() - this.#inFlightSince > this.hungMs) this.#lost("probe unanswered");
      return;
    }
    this.#inFlightSince = performance.now();
    try {
      await this.database.query(sql`select 1`);
      if (this.#connectedSince === undefined) {
        this.#connectedSince = performance.now();
        this.log.warn("database reachable again");
      }
    } catch (err) {
      this.#lost(String(err));
    } finally {
      this.#inFlightSince = undefined;
    }
  }

  #lost(why: string): void {
    if (this.#connectedSince === undefined || this.#closed) return;
    this.#connectedSince = undefined;
    outages.inc();
    this.log.warn("database unreachable", { why });
  }

  /** Idempotent. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

/**
 * true when a node whose heartbeat is older than NODE_TIMEOUT_MS is really gone: this edge has reached the
 * database without interruption for longer than the timeout plus a heartbeat period.
 */
export function nodeLivenessKnown(
  ctx: { dbWatch: DatabaseWatch; config: Pick<Config, "NODE_TIMEOUT_MS" | "HEARTBEAT_MS"> },
): boolean {
  return ctx.dbWatch.connectedForMs() > ctx.config.NODE_TIMEOUT_MS + ctx.config.HEARTBEAT_MS;
}
