/**
 * Parley entry point: `deno task start` (all: edge + origin in one process on embedded PGlite),
 * `deno task edge`, `deno task origin` (one role per process, several nodes on one Postgres).
 * SIGTERM/SIGINT: stop accepting, drain, close everything, exit 0. The explicit Deno.exit(0) matters: a process
 * that ever had a connected wrtc peer segfaults if it ends on its own (STACK-NOTES).
 */
import { bootstrapAdminKey } from "./db/api_keys.ts";
import { type Database, openDatabase } from "./db/client.ts";
import { type Config, loadConfigOrExit } from "./lib/config.ts";
import { configureLogging, log, type Logger } from "./lib/log.ts";
import { EdgeServer } from "./edge/server.ts";
import { OriginServer } from "./origin/server.ts";
import { assembleOrigin } from "./origin/assemble.ts";
import { webRoutes } from "./edge/web_routes.ts";
import { ttsRoutes } from "./edge/routes/tts.ts";
import { openAiRoutes } from "./edge/routes/openai.ts";
import { historyRoutes } from "./edge/routes/history.ts";
import { docsRoutes } from "./edge/openapi.ts";
import { startRetentionSweeper } from "./db/history.ts";
import { OriginSupervisor } from "./origin/supervisor.ts";
import {
  type ChildMessage,
  decodeSupervisorMessage,
  encodeSupervisorMessage,
} from "./origin/supervisor_protocol.ts";
import { originNodeId } from "./origin/node_id.ts";
import { checkAsrEngineOrExit, probeAsrEngineOrExit } from "./origin/engine_startup.ts";
import { guardUnhandledRejections } from "./lib/unhandled_rejection.ts";

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
  guardUnhandledRejections(plog);
  const supervisedChild = Deno.env.get("PARLEY_ORIGIN_CHILD") === "1";
  // the recognizer is checked before anything starts: a missing package is one line and exit 2
  const banner = role === "edge" || supervisedChild ? [] : checkAsrEngineOrExit(config);
  for (const line of banner) console.log(line);
  // the model load check runs while the edge starts; the origin waits for it
  const probed = role === "edge" || supervisedChild ? Promise.resolve() : probeAsrEngineOrExit(config);
  if (role === "origin" && config.ORIGIN_RECYCLE_SESSIONS > 0 && !supervisedChild) {
    if (config.SIP_PORT !== undefined) {
      // Two generations would have to bind the same SIP port while they overlap.
      console.error(
        "parley: invalid configuration: SIP_PORT: a recycling origin cannot take phone calls; set ORIGIN_RECYCLE_SESSIONS=0",
      );
      Deno.exit(2);
    }
    return await superviseOrigins(config, plog);
  }

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
        openAiRoutes,
      ]);
      retention = startRetentionSweeper(
        database,
        config.RETENTION_DAYS,
        plog,
        undefined,
        config.TTS_AUDIO_RETENTION_DAYS,
      );
      if (role === "all") {
        // Not ready until its own origin serves sessions: /readyz says 503 and the ready line waits.
        edge.addReadyCheck("origin", () => origin?.state === "running");
        console.log(`Parley (edge + origin) loading the speech engines; the edge listens at ${edge.url}`);
      } else console.log(`Parley edge ready at ${edge.url}`);
      if (created) {
        console.log(`First admin API key (shown once, store it now): ${created.key}`);
        console.log(
          `  tenant ${created.tenantId}; create more with: deno task keys create --tenant ${created.tenantId}`,
        );
      }
    }
    if (role === "all" || role === "origin") {
      await probed;
      const parts = await assembleOrigin(config, database, plog);
      // Only a supervised child recycles (`all` has one process and an embedded database: nobody to take over).
      const toSupervisor = (message: ChildMessage) => console.log(encodeSupervisorMessage(message));
      if (supervisedChild) {
        parts.recycleAfterSessions = config.ORIGIN_RECYCLE_SESSIONS;
        parts.recycleDrainMaxMs = config.RECYCLE_DRAIN_MAX_MS;
        parts.toSupervisor = toSupervisor;
      }
      origin = await OriginServer.start(config, database, plog, parts);
      console.log(`Parley origin ${origin.nodeId} serving at ${origin.url}`);
      if (edge) console.log(`Parley (edge + origin) ready at ${edge.url}`);
      void origin.recycled.then(() => stop("recycled"));
      if (supervisedChild) {
        const o = origin;
        toSupervisor({ type: "serving", nodeId: o.nodeId, url: o.url });
        void watchSupervisor((line) => {
          if (decodeSupervisorMessage(line)?.type === "successor_serving") void o.successorServing();
        }, () => stop("supervisor gone"));
      }
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

/**
 * A supervised child's stdin is a pipe from the supervisor: lines are its messages, EOF means
 * the supervisor is gone (even after SIGKILL), and the child shuts down rather than live on as an orphan.
 */
async function watchSupervisor(onLine: (line: string) => void, onGone: () => void): Promise<void> {
  let buf = "";
  const dec = new TextDecoder();
  try {
    for await (const chunk of Deno.stdin.readable) {
      buf += dec.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        onLine(buf.slice(0, nl).trim());
        buf = buf.slice(nl + 1);
      }
    }
  } catch { /* closed */ }
  onGone();
}

/** `main.ts origin` with ORIGIN_RECYCLE_SESSIONS > 0: run the origin as recycled child processes. */
async function superviseOrigins(
  config: Config,
  plog: Logger,
): Promise<void> {
  const supervisor = new OriginSupervisor({
    command: Deno.execPath(),
    args: ["run", "-A", "--unstable-worker-options", new URL(import.meta.url).pathname, "origin"],
    baseNodeId: originNodeId(config),
    basePort: config.ORIGIN_PORT,
    originUrl: config.ORIGIN_URL,
    log: plog.child({ role: "origin_supervisor" }),
    stopGraceMs: config.SHUTDOWN_GRACE_MS + 10_000,
  });
  const stop = async (signal: string) => {
    plog.info("supervisor shutting down", { signal });
    await supervisor.close();
    plog.info("bye");
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", () => void stop("SIGTERM"));
  Deno.addSignalListener("SIGINT", () => void stop("SIGINT"));
  console.log(
    `Parley origin supervisor (pid ${Deno.pid}): a new origin process every ${config.ORIGIN_RECYCLE_SESSIONS} sessions`,
  );
  supervisor.start();
  await new Promise(() => {}); // runs until a signal
}

if (import.meta.main) await main();
