/**
 * One origin node: the signed internal HTTP API (edge → origin), node registration + heartbeat, and the
 * components that do the work (sessions, engines, job workers). close() is the SIGTERM path: mark draining
 * (the edge stops routing here at once), end every session with `origin_shutdown` (bye first), close
 * components, deregister, stop the HTTP server.
 */
import type { EngineDescriptor } from "../protocol/engines.ts";
import { Hono } from "hono";
import { type Database, databaseChecks } from "../db/client.ts";
import { heartbeatNode, registerNode, stopNode } from "../db/nodes.ts";
import { databaseNow, settleOrphanedSessions } from "../db/orphan_sessions.ts";
import { sharedSecret } from "../db/settings.ts";
import { isDatabaseUnavailable } from "../db/unavailable.ts";
import type { Config } from "../lib/config.ts";
import { ApiError } from "../lib/errors.ts";
import { type AppVariables, installErrorHandling, observe, readBodyLimited } from "../lib/http.ts";
import type { Logger } from "../lib/log.ts";
import { registry } from "../lib/metrics.ts";
import { SIGNATURE_HEADER, verifyRequest } from "../protocol/internal_auth.ts";
import { type CreateSessionRequest, INTERNAL_SESSIONS_PATH } from "../protocol/internal_api.ts";
import { CLOSE_REASONS, type CloseReason, SayRequest } from "../protocol/session_messages.ts";
import {
  OriginBusyError,
  type OriginComponent,
  type SessionService,
  type TranscriptionService,
} from "./services.ts";
import { INTERNAL_TRANSCRIPTIONS_PATH, TRANSCRIBE_RATE } from "../protocol/openai.ts";
import { int16ToFloat } from "../lib/audio/resampler.ts";
import { ClosedError } from "../lib/closed_error.ts";
import {
  closeReason,
  INTERNAL_LISTEN_PATH,
  LISTEN_CLOSE,
  ListenViolation,
  parseSampleRate,
} from "../protocol/listen.ts";
import { originNodeId } from "./node_id.ts";
import type { ChildMessage } from "./supervisor_protocol.ts";
import type { RoomHost } from "./rooms/room_host.ts";
import {
  INTERNAL_ROOMS_PATH,
  type InternalListenerRequest,
  type InternalListenerResponse,
  ListenerQuery,
} from "../protocol/rooms.ts";

const heartbeats = registry.counter("parley_origin_heartbeats_total", "Registry heartbeats by outcome");
const recycleState = registry.gauge(
  "parley_origin_recycle_sessions_left",
  "Sessions this origin process accepts before it recycles (-1: recycling off)",
);
const VERSION = "0.1.0";

type OriginVariables = AppVariables & { body: Uint8Array };

export interface OriginParts {
  sessions?: SessionService;
  transcriber?: TranscriptionService;
  components?: OriginComponent[];
  /** The speech engines this origin runs and could run (node row → `GET /v1/engines`; /readyz). */
  engines?: EngineDescriptor[];
  /** Recycle this process after accepting this many sessions (0/undefined: never). */
  recycleAfterSessions?: number;
  /** After recycling starts, end the sessions still live after this long (default 1 h). */
  recycleDrainMaxMs?: number;
  /** The origin's rooms (WHEP listeners, publisher sessions); absent: the room routes answer 503. */
  rooms?: RoomHost;
  /** A supervised child's channel to its supervisor (main.ts writes the messages to stdout). */
  toSupervisor?: (message: ChildMessage) => void;
}

export class OriginServer {
  #state: "running" | "draining" | "closed" = "running";
  #server?: Deno.HttpServer;
  #heartbeat?: ReturnType<typeof setInterval>;
  #orphanPass?: ReturnType<typeof setTimeout>;
  #closing?: Promise<void>;
  #accepted = 0;
  #successorServing = false;
  #recycleWatch?: ReturnType<typeof setInterval>;
  #recycleDeadline?: ReturnType<typeof setTimeout>;
  #markRecycled: () => void = () => {};
  /**
   * Resolves when this process has recycled: it accepted ORIGIN_RECYCLE_SESSIONS sessions, stopped accepting,
   * and its last session ended (or RECYCLE_DRAIN_MAX_MS passed). main.ts then closes it and exits 0; the
   * supervisor (origin/supervisor.ts) has already started the next generation.
   */
  readonly recycled: Promise<void>;
  readonly app: Hono<{ Variables: OriginVariables }>;
  readonly nodeId: string;
  url = "";

  private constructor(
    private readonly config: Config,
    private readonly database: Database,
    private readonly log: Logger,
    private readonly secret: string,
    private readonly parts: OriginParts,
  ) {
    this.nodeId = originNodeId(config);
    this.log = log.child({ role: "origin", node_id: this.nodeId });
    this.app = this.buildApp();
    this.recycled = new Promise((resolve) => this.#markRecycled = resolve);
    recycleState.collect(() => this.recycleAfter > 0 ? Math.max(0, this.recycleAfter - this.#accepted) : -1);
    registry.gauge("parley_origin_sessions", "Live sessions on this origin").collect(() =>
      parts.sessions?.load ?? 0
    );
    registry.gauge("parley_origin_draining", "1 while this origin is draining").collect(() =>
      this.#state === "running" ? 0 : 1
    );
  }

  static async start(
    config: Config,
    database: Database,
    log: Logger,
    parts: OriginParts,
  ): Promise<OriginServer> {
    const secret = await sharedSecret(database, "internal_secret", config.INTERNAL_SECRET);
    const o = new OriginServer(config, database, log, secret, parts);
    await o.settleOrphans();
    o.#server = Deno.serve(
      { hostname: config.ORIGIN_HOST, port: config.ORIGIN_PORT, onListen: () => {} },
      o.app.fetch,
    );
    const addr = o.#server.addr as Deno.NetAddr;
    o.url = config.ORIGIN_URL ?? `http://${addr.hostname}:${addr.port}`;
    await registerNode(database, {
      id: o.nodeId,
      url: o.url,
      capacity: config.NODE_CAPACITY,
      version: VERSION,
      engines: parts.engines,
    });
    o.#heartbeat = setInterval(() => o.beat(), config.HEARTBEAT_MS);
    o.log.info("origin listening", { url: o.url, capacity: config.NODE_CAPACITY });
    return o;
  }

  get state(): "running" | "draining" | "closed" {
    return this.#state;
  }

  /**
   * Before serving: close what a previous process under this node id left open (db/orphan_sessions.ts); once
   * more after the connect timeout for rows that were still `connecting` (possibly in flight) the first time.
   */
  private async settleOrphans(): Promise<void> {
    const createdBefore = await databaseNow(this.database);
    const grace = this.config.SESSION_CONNECT_TIMEOUT_MS + this.config.NODE_TIMEOUT_MS;
    const pass = async () => {
      const ids = await settleOrphanedSessions(this.database, this.nodeId, {
        createdBefore,
        connectingGraceMs: grace,
      });
      if (ids.length) {
        this.log.warn("closed sessions left by a previous process of this node", { count: ids.length });
      }
    };
    await pass();
    this.#orphanPass = setTimeout(() => {
      pass().catch((err) => this.log.warn("orphan session pass failed", { err: String(err) }));
    }, grace + 1000);
  }

  /** Sessions accepted before recycling; 0 = never (only a supervised child recycles: main.ts decides). */
  get recycleAfter(): number {
    return this.parts.recycleAfterSessions ?? 0;
  }

  private countTowardsRecycle(): void {
    const n = ++this.#accepted;
    const soon = this.recycleAfter - Math.ceil(this.recycleAfter / 10);
    // The supervisor starts the successor on this message, so it is loaded before this process stops accepting.
    if (n === Math.max(1, soon)) {
      console.log(`Parley origin ${this.nodeId} recycling soon`);
      this.parts.toSupervisor?.({ type: "recycling_soon", nodeId: this.nodeId });
    }
    if (n < this.recycleAfter) return;
    if (this.#successorServing) void this.startRecycle();
    else if (n === this.recycleAfter) {
      // Never leave the node without an accepting process: serve on until the successor is up.
      this.log.warn("recycle due, but the successor is not serving yet; still accepting", { accepted: n });
    }
  }

  /**
   * The supervisor says the next generation accepts sessions (main.ts relays its `successor_serving` message). Resolves once the
   * registry says `draining` if that started recycling.
   */
  async successorServing(): Promise<void> {
    this.#successorServing = true;
    if (this.recycleAfter > 0 && this.#accepted >= this.recycleAfter) await this.startRecycle();
  }

  /** Stop accepting, tell the edge and the supervisor, and resolve `recycled` once the sessions are gone. */
  private startRecycle(): Promise<void> {
    if (this.#state !== "running") return Promise.resolve();
    this.#state = "draining";
    this.parts.sessions?.drain();
    const told = this.beat();
    this.log.info("origin recycling", { accepted: this.#accepted, live: this.parts.sessions?.load ?? 0 });
    for (const comp of this.parts.components ?? []) {
      if (!comp.closeOnRecycle) continue;
      comp.close().catch((err) => this.log.error("component close failed", { component: comp.name, err }));
    }
    // The supervisor marks this generation draining (and starts the next one if "soon" did not already).
    console.log(`Parley origin ${this.nodeId} recycling after ${this.#accepted} sessions`);
    this.parts.toSupervisor?.({ type: "recycling", nodeId: this.nodeId, accepted: this.#accepted });
    const done = () => {
      clearInterval(this.#recycleWatch);
      clearTimeout(this.#recycleDeadline);
      this.#markRecycled();
    };
    this.#recycleWatch = setInterval(() => {
      if ((this.parts.sessions?.load ?? 0) === 0) done();
    }, 250);
    this.#recycleDeadline = setTimeout(() => {
      this.log.warn("recycle drain time exceeded; ending the remaining sessions", {
        live: this.parts.sessions?.load ?? 0,
      });
      done();
    }, this.parts.recycleDrainMaxMs ?? 3_600_000);
    return told;
  }

  private async beat(): Promise<void> {
    try {
      await heartbeatNode(
        this.database,
        this.nodeId,
        // a file being transcribed weighs like a session in routing
        (this.parts.sessions?.load ?? 0) + (this.parts.transcriber?.active ?? 0),
        this.#state !== "running",
      );
      heartbeats.inc({ outcome: "ok" });
    } catch (err) {
      heartbeats.inc({ outcome: "error" });
      this.log.warn("heartbeat failed", { err: String(err) });
    }
  }

  private buildApp(): Hono<{ Variables: OriginVariables }> {
    const app = new Hono<{ Variables: OriginVariables }>();
    app.use("*", observe("origin", this.log));
    installErrorHandling(app, this.log, (err) =>
      // 503: the edge tries another origin (or tells its client to retry) instead of failing the request.
      isDatabaseUnavailable(err)
        ? new ApiError(503, "unavailable", "database unavailable", { "Retry-After": "5" })
        : undefined);
    app.get("/healthz", (c) => c.json({ ok: true, role: "origin", node_id: this.nodeId }));
    app.get("/readyz", async (c) => {
      const checks: Record<string, boolean> = await databaseChecks(this.database);
      for (const comp of this.parts.components ?? []) {
        try {
          checks[comp.name] = await comp.ready();
        } catch {
          checks[comp.name] = false;
        }
      }
      checks.accepting = this.#state === "running";
      const ok = Object.values(checks).every(Boolean);
      const asr = this.parts.engines?.find((e) => e.kind === "asr" && e.active);
      const recognizer = asr ? { name: asr.name, model: asr.model, understands: asr.understands } : undefined;
      return c.json({ ok, role: "origin", node_id: this.nodeId, checks, recognizer }, ok ? 200 : 503);
    });
    app.get(
      "/metrics",
      (c) => c.text(registry.render(), 200, { "content-type": "text/plain; version=0.0.4" }),
    );

    // Everything under /internal is signed by the edge.
    app.use("/internal/*", async (c, next) => {
      // uploaded audio (16 kHz PCM16) up to TRANSCRIBE_MAX_SECONDS; everything else is small JSON
      const limit = c.req.path === INTERNAL_TRANSCRIPTIONS_PATH
        ? this.config.TRANSCRIBE_MAX_SECONDS * TRANSCRIBE_RATE * 2 + 1024
        : 256 * 1024;
      const body = await readBodyLimited(c, limit);
      const url = new URL(c.req.url);
      const v = await verifyRequest(
        this.secret,
        c.req.header(SIGNATURE_HEADER),
        c.req.method,
        url.pathname + url.search,
        body,
      );
      if (!v.ok) throw new ApiError(401, "unauthorized", `internal API: ${v.reason}`);
      c.set("body", body);
      await next();
    });
    app.post(INTERNAL_SESSIONS_PATH, async (c) => {
      const sessions = this.requireSessions();
      if (this.#state !== "running") throw new ApiError(503, "unavailable", "origin is draining");
      let req: CreateSessionRequest;
      try {
        req = JSON.parse(new TextDecoder().decode(c.get("body")));
      } catch {
        throw new ApiError(400, "invalid_json", "body is not valid JSON");
      }
      try {
        const { sdp } = await sessions.create(req);
        if (this.recycleAfter > 0) this.countTowardsRecycle();
        return c.json({ session_id: req.session_id, node_id: this.nodeId, sdp }, 201);
      } catch (e) {
        if (e instanceof OriginBusyError) throw new ApiError(503, "unavailable", e.message);
        throw e;
      }
    });
    app.post(INTERNAL_TRANSCRIPTIONS_PATH, (c) => {
      const transcriber = this.parts.transcriber;
      if (!transcriber) throw new ApiError(503, "unavailable", "this origin runs no transcription service");
      if (this.#state !== "running") throw new ApiError(503, "unavailable", "origin is draining");
      const body = c.get("body");
      if (body.byteLength % 2) throw new ApiError(400, "bad_request", "PCM16 body has an odd length");
      const pcm = int16ToFloat(
        new Int16Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength)),
      );
      const language = c.req.query("language") || undefined;
      const abort = new AbortController();
      const lines = transcriber.transcribe(pcm, {
        language,
        signal: abort.signal,
        requestId: c.get("requestId"),
      });
      const enc = new TextEncoder();
      const stream = new ReadableStream<Uint8Array>({
        async pull(ctrl) {
          const r = await lines.next();
          if (r.done) ctrl.close();
          else ctrl.enqueue(enc.encode(JSON.stringify(r.value) + "\n"));
        },
        async cancel() {
          abort.abort();
          await lines.return(undefined);
        },
      });
      return c.body(stream, 200, { "content-type": "application/x-ndjson", "cache-control": "no-store" });
    });
    app.get(INTERNAL_LISTEN_PATH, (c) => {
      const sessions = this.requireSessions();
      if (!sessions.createStream) {
        throw new ApiError(503, "unavailable", "this origin runs no stream sessions");
      }
      if ((c.req.header("upgrade") ?? "").toLowerCase() !== "websocket") {
        throw new ApiError(426, "upgrade_required", "this route is a WebSocket");
      }
      const q = new URL(c.req.url).searchParams;
      const resumeRaw = q.get("resume_after_seq");
      const { socket, response } = Deno.upgradeWebSocket(c.req.raw);
      // Refusals after the upgrade are close codes (the edge relays them to the client as they are).
      const refuse = (code: number, message: string) => {
        const close = () => socket.close(code, closeReason(message));
        if (socket.readyState === WebSocket.OPEN) close();
        else socket.onopen = close;
      };
      if (this.#state !== "running") {
        refuse(LISTEN_CLOSE.tryAgain, "origin is draining");
        return response;
      }
      let options: unknown;
      let sampleRate: number | undefined;
      try {
        options = JSON.parse(q.get("options") ?? "{}");
        sampleRate = parseSampleRate(q.get("sample_rate"));
      } catch (e) {
        refuse(
          LISTEN_CLOSE.badRequest,
          e instanceof ListenViolation ? e.message : "options is not valid JSON",
        );
        return response;
      }
      sessions.createStream({
        socket,
        sampleRate,
        options,
        tenantId: q.get("tenant_id") ?? "",
        sessionId: q.get("session_id") ?? "",
      }, resumeRaw !== null ? { last_seq: Number(resumeRaw) } : undefined).then(() => {
        if (this.recycleAfter > 0) this.countTowardsRecycle();
      }, (e) => {
        if (e instanceof OriginBusyError) refuse(LISTEN_CLOSE.tryAgain, e.message);
        else if (e instanceof ApiError && e.status === 404) refuse(LISTEN_CLOSE.notFound, e.message);
        else if (e instanceof ApiError && e.status === 409) refuse(LISTEN_CLOSE.conflict, e.message);
        else if (e instanceof ApiError && e.status < 500) refuse(LISTEN_CLOSE.badRequest, e.message);
        else {
          this.log.error("stream session failed to start", { err: e });
          refuse(LISTEN_CLOSE.internal, "session setup failed");
        }
      });
      return response;
    });
    app.get(`${INTERNAL_SESSIONS_PATH}/:id`, (c) => {
      const s = this.requireSessions().get(c.req.param("id"));
      if (!s) throw new ApiError(404, "not_found", "no such session on this origin");
      return c.json(s);
    });
    app.post(`${INTERNAL_SESSIONS_PATH}/:id/say`, async (c) => {
      let body: unknown;
      try {
        body = JSON.parse(new TextDecoder().decode(c.get("body")));
      } catch {
        throw new ApiError(400, "invalid_json", "body is not valid JSON");
      }
      const req = SayRequest.safeParse(body);
      if (!req.success) throw new ApiError(400, "validation_failed", req.error.issues[0].message);
      let s;
      try {
        const { text, ...opts } = req.data;
        s = await this.requireSessions().say(c.req.param("id"), text, opts);
      } catch (e) {
        if (e instanceof ClosedError) throw new ApiError(409, "conflict", "the session is closing or closed");
        throw e;
      }
      if (!s) throw new ApiError(404, "not_found", "no such session on this origin");
      return c.json(s, 202);
    });
    app.delete(`${INTERNAL_SESSIONS_PATH}/:id`, async (c) => {
      const reason = (c.req.query("reason") ?? "client_hangup") as CloseReason;
      if (!CLOSE_REASONS.includes(reason)) {
        throw new ApiError(400, "validation_failed", "unknown close reason");
      }
      const s = await this.requireSessions().end(c.req.param("id"), reason);
      if (!s) throw new ApiError(404, "not_found", "no such session on this origin");
      return c.json(s);
    });
    this.roomRoutes(app);
    return app;
  }

  private roomRoutes(app: Hono<{ Variables: OriginVariables }>): void {
    const rooms = () => {
      if (!this.parts.rooms) throw new ApiError(503, "unavailable", "this origin hosts no rooms");
      return this.parts.rooms;
    };
    app.post(`${INTERNAL_ROOMS_PATH}/:id/listeners`, async (c) => {
      const host = rooms();
      if (this.#state !== "running") throw new ApiError(503, "unavailable", "origin is draining");
      let req: InternalListenerRequest;
      try {
        req = JSON.parse(new TextDecoder().decode(c.get("body")));
      } catch {
        throw new ApiError(400, "invalid_json", "body is not valid JSON");
      }
      const q = ListenerQuery.safeParse({ source: req.source });
      if (!q.success || typeof req.sdp !== "string" || typeof req.listener_id !== "string") {
        throw new ApiError(400, "bad_request", "listener request needs sdp, listener_id and a valid source");
      }
      const { listener, answer } = await host.addListener(c.req.param("id"), req.tenant_id, req.sdp, {
        id: req.listener_id,
        source: q.data.source,
      });
      const out: InternalListenerResponse = { listener_id: listener.id, node_id: this.nodeId, sdp: answer };
      return c.json(out, 201);
    });
    app.delete(`${INTERNAL_ROOMS_PATH}/:id/listeners/:lid`, (c) => {
      if (!rooms().removeListener(c.req.param("id"), c.req.param("lid"))) {
        throw new ApiError(404, "not_found", "no such listener on this origin");
      }
      return c.body(null, 204);
    });
    app.get(`${INTERNAL_ROOMS_PATH}/:id`, (c) => {
      const room = rooms().manager.get(c.req.param("id"));
      if (!room || room.closed) throw new ApiError(404, "not_found", "room not on this origin");
      return c.json(room.summary());
    });
    app.delete(`${INTERNAL_ROOMS_PATH}/:id`, (c) => {
      rooms().closeRoom(c.req.param("id"));
      return c.body(null, 204);
    });
  }

  private requireSessions(): SessionService {
    if (!this.parts.sessions) throw new ApiError(503, "unavailable", "this origin runs no session service");
    return this.parts.sessions;
  }

  /** Idempotent drain-and-close (SIGTERM). */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#state = "draining";
      clearInterval(this.#recycleWatch);
      clearTimeout(this.#recycleDeadline);
      this.parts.sessions?.drain();
      await this.beat(); // tell the edge we're draining before anything else
      try {
        await this.parts.sessions?.close("origin_shutdown");
        for (const comp of [...(this.parts.components ?? [])].reverse()) {
          await comp.close().catch((err) =>
            this.log.error("component close failed", { component: comp.name, err })
          );
        }
      } finally {
        clearInterval(this.#heartbeat);
        clearTimeout(this.#orphanPass);
        await stopNode(this.database, this.nodeId).catch(() => {});
        await this.#server?.shutdown();
        this.#state = "closed";
        this.log.info("origin closed");
      }
    })();
    return this.#closing;
  }
}
