/**
 * One edge process: builds its context, serves HTTP, sweeps sessions of dead origins. close() stops accepting,
 * lets in-flight requests finish (Deno.serve shutdown), stops the sweeper. It does not own the database
 * (the role runner does), so edge and origin can share one in `deno task start`.
 */
import { endOpenStreams } from "./open_streams.ts";
import type { Database } from "../db/client.ts";
import { sharedSecret } from "../db/settings.ts";
import type { Config } from "../lib/config.ts";
import { type Logger } from "../lib/log.ts";
import { registry } from "../lib/metrics.ts";
import { createEdgeApp, type RouteGroup } from "./app.ts";
import { Authenticator } from "./auth.ts";
import type { EdgeContext } from "./context.ts";
import { OriginClient } from "./origin_client.ts";
import { RateLimiter } from "./rate_limit.ts";
import { sweepLostSessions } from "./routes/sessions.ts";
import { DatabaseWatch, nodeLivenessKnown } from "./database_watch.ts";

const swept = registry.counter(
  "parley_edge_sessions_swept_total",
  "Sessions closed as origin_lost by the sweeper",
);

export class EdgeServer {
  #state: "running" | "closing" | "closed" = "running";
  #server: Deno.HttpServer;
  #sweeper: ReturnType<typeof setInterval>;
  #closing?: Promise<void>;
  readonly url: string;

  private constructor(readonly ctx: EdgeContext, extra: RouteGroup[]) {
    const app = createEdgeApp(ctx, extra);
    this.#server = Deno.serve({
      hostname: ctx.config.HOST,
      port: ctx.config.PORT,
      onListen: () => {},
    }, app.fetch);
    const addr = this.#server.addr as Deno.NetAddr;
    const host = addr.hostname === "0.0.0.0" || addr.hostname === "127.0.0.1" ? "localhost" : addr.hostname;
    this.url = ctx.config.PUBLIC_URL ?? `http://${host}:${addr.port}`;
    this.#sweeper = setInterval(() => {
      // Heartbeats the database could not receive prove nothing: wait until live nodes have had time to beat.
      if (!nodeLivenessKnown(ctx)) return;
      sweepLostSessions(ctx).then((n) => {
        if (n > 0) {
          swept.inc(undefined, n);
          ctx.log.warn("closed sessions of lost origins", { count: n });
        }
      }).catch((err) => ctx.log.error("sweeper failed", { err }));
    }, Math.max(1000, ctx.config.HEARTBEAT_MS));
  }

  static async start(
    config: Config,
    database: Database,
    log: Logger,
    extra: RouteGroup[] = [],
  ): Promise<EdgeServer> {
    const [internal, jwt] = await Promise.all([
      sharedSecret(database, "internal_secret", config.INTERNAL_SECRET),
      sharedSecret(database, "jwt_secret", config.JWT_SECRET),
    ]);
    const ctx: EdgeContext = {
      config,
      database,
      auth: new Authenticator(database, jwt),
      limiter: new RateLimiter(config.RATE_LIMIT_RPS, config.RATE_LIMIT_BURST),
      origins: new OriginClient(internal),
      log: log.child({ role: "edge" }),
      readyChecks: new Map(),
      dbWatch: new DatabaseWatch(database, log.child({ role: "edge" }), Math.min(1000, config.HEARTBEAT_MS)),
    };
    const edge = new EdgeServer(ctx, extra);
    ctx.log.info("edge listening", { url: edge.url });
    return edge;
  }

  get state(): "running" | "closing" | "closed" {
    return this.#state;
  }

  /** /readyz answers 503 while `check` returns false (reported as `checks[name]`). */
  addReadyCheck(name: string, check: () => boolean): void {
    this.ctx.readyChecks.set(name, check);
  }

  /** Idempotent: stop accepting, drain in-flight requests, stop timers. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#state = "closing";
      clearInterval(this.#sweeper);
      this.ctx.dbWatch.close();
      // follow and viewer streams never end on their own: end them so the shutdown can drain
      endOpenStreams();
      await this.#server.shutdown();
      this.#state = "closed";
      this.ctx.log.info("edge closed");
    })();
    return this.#closing;
  }
}
