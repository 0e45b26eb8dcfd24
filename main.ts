/**
 * Parley entry point: `deno task start` (all: edge + origin in one process on embedded PGlite),
 * `deno task edge`, `deno task origin` (one role per process, several nodes on one Postgres).
 * SIGTERM/SIGINT: stop accepting, drain, close everything, exit 0. The explicit Deno.exit(0) matters: a process
 * that ever had a connected wrtc peer segfaults if it ends on its own (STACK-NOTES).
 */
import { bootstrapAdminKey } from "./db/api_keys.ts";
import { type Database, openDatabase } from "./db/client.ts";
import { loadConfigOrExit } from "./lib/config.ts";
import { configureLogging, log } from "./lib/log.ts";
import { EdgeServer } from "./edge/server.ts";
import { OriginServer } from "./origin/server.ts";
import { assembleOrigin } from "./origin/assemble.ts";
import { webRoutes } from "./edge/web_routes.ts";
import { ttsRoutes } from "./edge/routes/tts.ts";
import { historyRoutes } from "./edge/routes/history.ts";
import { docsRoutes } from "./edge/openapi.ts";
import { startRetentionSweeper } from "./db/history.ts";

type Role = "all" | "edge" | "origin";

async function main(): Promise<void> {
  const role = (Deno.args[0] ?? "all") as Role;
  if (!["all", "edge", "origin"].includes(role)) {
    console.error(`parley: unknown role '${role}' (use all, edge or origin)`);
    Deno.exit(2);
  }
  const config = loadConfigOrExit();
  configureLogging({ level: config.LOG_LEVEL });
  const plog = log.child({ pid: Deno.pid });

  let database: Database;
  try {
    database = await openDatabase({
      url: config.DATABASE_URL,
      dataDir: `${config.DATA_DIR.replace(/\/+$/, "")}/pglite`,
      log: plog,
    });
  } catch (err) {
    console.error(`parley: cannot open database: ${err instanceof Error ? err.message : err}`);
    Deno.exit(1);
  }

  let origin: OriginServer | undefined;
  let edge: EdgeServer | undefined;
  let retention: { stop(): void } | undefined;
  let stopping = false;
  // A signal during start-up waits for it to finish: exiting while engine workers are still loading their
  // native libraries (or with half-built parts nobody closes) crashed the process (exit 139).
  let markStarted = () => {};
  const started = new Promise<void>((resolve) => markStarted = resolve);
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    plog.info("shutting down", { signal });
    const hardStop = setTimeout(() => {
      plog.error("shutdown grace exceeded, exiting");
      Deno.exit(1);
    }, config.SHUTDOWN_GRACE_MS + 5000);
    try {
      await started;
      // Origin first: it drains (edge stops routing to it), says bye to its sessions and deregisters.
      retention?.stop();
      await origin?.close();
      await edge?.close();
      await database.close();
    } catch (err) {
      plog.error("error during shutdown", { err });
    }
    clearTimeout(hardStop);
    plog.info("bye");
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", () => void stop("SIGTERM"));
  Deno.addSignalListener("SIGINT", () => void stop("SIGINT"));

  try {
    // Edge first: liveness (/healthz) answers while the origin is still loading its engines; until the origin
    // registers, new sessions get 503 + Retry-After, which is the truth.
    if (role === "all" || role === "edge") {
      const created = await bootstrapAdminKey(database);
      edge = await EdgeServer.start(config, database, plog, [
        webRoutes,
        historyRoutes,
        docsRoutes,
        ttsRoutes,
      ]);
      retention = startRetentionSweeper(database, config.RETENTION_DAYS, plog);
      console.log(`Parley ${role === "all" ? "(edge + origin)" : "edge"} ready at ${edge.url}`);
      if (created) {
        console.log(`First admin API key (shown once, store it now): ${created.key}`);
        console.log(
          `  tenant ${created.tenantId}; create more with: deno task keys create --tenant ${created.tenantId}`,
        );
      }
    }
    if (role === "all" || role === "origin") {
      const parts = await assembleOrigin(config, database, plog);
      origin = await OriginServer.start(config, database, plog, parts);
      console.log(`Parley origin ${origin.nodeId} serving at ${origin.url}`);
    }
    markStarted();
  } catch (err) {
    plog.error("start failed", { err });
    await origin?.close().catch(() => {});
    await edge?.close().catch(() => {});
    await database.close().catch(() => {});
    Deno.exit(1);
  }
}

if (import.meta.main) await main();
