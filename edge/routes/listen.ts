/**
 * `GET /v1/listen`: a live session over a WebSocket (protocol/listen.ts). The edge authenticates (bearer
 * header, `?token=`, or a `bearer.<token>` subprotocol entry for browsers), validates the query, creates the
 * session row (kind `websocket`) on the least-loaded origin — or, with `?resume=&last_seq=`, routes to the
 * session's origin — and relays frames to that origin's signed `/internal/listen` (edge/listen_relay.ts).
 *
 * Every refusal of a WebSocket request is a close code after the upgrade (browsers cannot read an HTTP error
 * of a failed handshake): 4401, 4403, 4400, 4404, 4409, 4429, 1013. A request that is not a WebSocket
 * upgrade gets 426 with the usual JSON error.
 */
import { pickNodes } from "../../db/nodes.ts";
import { countLiveSessions, createSessionRow, deleteUnstartedSessionRow } from "../../db/sessions.ts";
import { ApiError } from "../../lib/errors.ts";
import { registry } from "../../lib/metrics.ts";
import { SIGNATURE_HEADER, signRequest } from "../../protocol/internal_auth.ts";
import {
  BEARER_SUBPROTOCOL_PREFIX,
  closeReason,
  internalListenQuery,
  LISTEN_CLOSE,
  LISTEN_PATH,
  LISTEN_SUBPROTOCOL,
  listenOptionsFromQuery,
  ListenViolation,
  parseSampleRate,
} from "../../protocol/listen.ts";
import { SessionOptions } from "../../protocol/session_messages.ts";
import { hasScope, type Principal } from "../auth.ts";
import type { EdgeApp, EdgeContext } from "../context.ts";
import { ListenRelay } from "../listen_relay.ts";
import { loadRoom, placeRoom } from "./rooms.ts";
import { loadSession, nodeUrl } from "./sessions.ts";

const streams = registry.counter("parley_edge_listen_streams_total", "/v1/listen requests, by outcome");
const live = registry.gauge("parley_edge_listen_live", "/v1/listen streams being relayed by this edge");
let liveCount = 0;
live.collect(() => liveCount);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

interface Plan {
  principal: Principal;
  sessionId: string;
  node: { id: string; url: string };
  sampleRate?: number;
  options: SessionOptions;
  resumeAfterSeq?: number;
}

function apiToListen(e: ApiError): ListenViolation {
  const code = e.status === 401
    ? LISTEN_CLOSE.unauthorized
    : e.status === 403
    ? LISTEN_CLOSE.forbidden
    : e.status === 404
    ? LISTEN_CLOSE.notFound
    : e.status === 409
    ? LISTEN_CLOSE.conflict
    : e.status === 429
    ? LISTEN_CLOSE.limitExceeded
    : e.status === 503
    ? LISTEN_CLOSE.tryAgain
    : e.status < 500
    ? LISTEN_CLOSE.badRequest
    : LISTEN_CLOSE.internal;
  return new ListenViolation(code, e.message);
}

/** Everything decided before the upgrade: who, which session, which origin. Throws ListenViolation. */
async function plan(ctx: EdgeContext, credential: string | undefined, q: URLSearchParams): Promise<Plan> {
  let principal: Principal;
  try {
    principal = await ctx.auth.authenticate(credential ? `Bearer ${credential}` : undefined);
  } catch (e) {
    throw e instanceof ApiError ? apiToListen(e) : e;
  }
  if (
    !hasScope(principal, "sessions") && !(principal.kind === "token" && principal.scopes.includes("sessions"))
  ) {
    throw new ListenViolation(LISTEN_CLOSE.forbidden, "this credential lacks the 'sessions' scope");
  }
  if (ctx.limiter.take(principal.keyId) > 0) {
    throw new ListenViolation(LISTEN_CLOSE.limitExceeded, "rate limit exceeded for this API key");
  }
  const sampleRate = parseSampleRate(q.get("sample_rate"));
  const opts = SessionOptions.safeParse(listenOptionsFromQuery(q));
  if (!opts.success) {
    throw new ListenViolation(
      LISTEN_CLOSE.badRequest,
      opts.error.issues.map((i) => `${i.path.join(".") || "options"}: ${i.message}`).join("; "),
    );
  }
  const resume = q.get("resume");
  if (resume !== null) {
    const lastRaw = q.get("last_seq") ?? "0";
    if (!UUID.test(resume) || !/^\d{1,9}$/.test(lastRaw)) {
      throw new ListenViolation(
        LISTEN_CLOSE.badRequest,
        "resume needs a session id and a non-negative last_seq",
      );
    }
    try {
      const row = await loadSession(ctx, principal, resume);
      if (row.kind !== "websocket") {
        throw new ApiError(
          409,
          "conflict",
          `that session is a ${row.kind} session; only WebSocket sessions resume on /v1/listen`,
        );
      }
      if (row.state === "closed") {
        throw new ApiError(409, "conflict", `session already closed (${row.reason})`);
      }
      const url = await nodeUrl(ctx, row.nodeId);
      if (!url) throw new ApiError(409, "conflict", "the session's origin is gone; start a new session");
      if (Number(lastRaw) > row.lastSeq) {
        throw new ApiError(
          400,
          "bad_request",
          `last_seq ${lastRaw} is ahead of the session (${row.lastSeq})`,
        );
      }
      return {
        principal,
        sessionId: row.id,
        node: { id: row.nodeId!, url },
        sampleRate,
        options: opts.data,
        resumeAfterSeq: Number(lastRaw),
      };
    } catch (e) {
      throw e instanceof ApiError ? apiToListen(e) : e;
    }
  }
  if (principal.sessionId) {
    throw new ListenViolation(LISTEN_CLOSE.forbidden, "this token is limited to an existing session");
  }
  const n = await countLiveSessions(ctx.database, { tenantId: principal.tenantId });
  if (Number(n) >= ctx.config.MAX_SESSIONS_PER_TENANT) {
    throw new ListenViolation(LISTEN_CLOSE.limitExceeded, `tenant has ${n} live sessions`);
  }
  if (principal.maxSessions) {
    const k = await countLiveSessions(ctx.database, { apiKeyId: principal.keyId });
    if (Number(k) >= principal.maxSessions) {
      throw new ListenViolation(LISTEN_CLOSE.limitExceeded, `API key has ${k} live sessions`);
    }
  }
  let node: { id: string; url: string } | undefined;
  try {
    // A publisher goes where its room lives (placing the room if it has no live origin yet).
    node = opts.data.room
      ? await placeRoom(ctx, await loadRoom(ctx, principal, opts.data.room))
      : (await pickNodes(ctx.database, ctx.config.NODE_TIMEOUT_MS))[0];
  } catch (e) {
    throw e instanceof ApiError ? apiToListen(e) : e;
  }
  if (!node) throw new ListenViolation(LISTEN_CLOSE.tryAgain, "no origin node can take a session now");
  const sessionId = await createSessionRow(ctx.database, {
    tenantId: principal.tenantId,
    apiKeyId: principal.keyId,
    mode: opts.data.mode,
    options: opts.data,
    nodeId: node.id,
    kind: "websocket",
  });
  return { principal, sessionId, node: { id: node.id, url: node.url }, sampleRate, options: opts.data };
}

export function listenRoutes(app: EdgeApp, ctx: EdgeContext): void {
  app.get(LISTEN_PATH, async (c) => {
    if ((c.req.header("upgrade") ?? "").toLowerCase() !== "websocket") {
      throw new ApiError(426, "upgrade_required", "GET /v1/listen is a WebSocket: send Upgrade: websocket", {
        Upgrade: "websocket",
      });
    }
    const log = c.get("log");
    const q = new URL(c.req.url).searchParams;
    // Headers must be read before the upgrade.
    const offered = (c.req.header("sec-websocket-protocol") ?? "").split(",").map((p) => p.trim()).filter(
      Boolean,
    );
    const bearerProto = offered.find((p) => p.startsWith(BEARER_SUBPROTOCOL_PREFIX));
    const authHeader = c.req.header("authorization");
    const headerCred = authHeader ? /^Bearer\s+(\S{1,4096})\s*$/i.exec(authHeader)?.[1] ?? "" : undefined;
    const credential = headerCred ?? q.get("token") ?? bearerProto?.slice(BEARER_SUBPROTOCOL_PREFIX.length);
    // Echo the protocol the client asked for (never the token entry, unless it offered nothing else).
    const protocol = offered.includes(LISTEN_SUBPROTOCOL) ? LISTEN_SUBPROTOCOL : bearerProto;

    let p: Plan | undefined;
    let refusal: ListenViolation | undefined;
    try {
      p = await plan(ctx, credential, q);
    } catch (e) {
      if (!(e instanceof ListenViolation)) throw e;
      refusal = e;
    }
    const { socket, response } = Deno.upgradeWebSocket(c.req.raw, protocol ? { protocol } : {});
    if (refusal || !p) {
      streams.inc({ outcome: String(refusal?.code ?? 1011) });
      socket.onopen = () => socket.close(refusal!.code, closeReason(refusal!.message));
      return response;
    }
    const planned = p;
    liveCount++;
    const relay = new ListenRelay(socket, log, (code, started) => {
      liveCount--;
      streams.inc({ outcome: String(code) });
      if (!started && planned.resumeAfterSeq === undefined) {
        deleteUnstartedSessionRow(ctx.database, planned.sessionId).catch((err) =>
          log.warn("could not remove an unstarted stream row", { err: String(err) })
        );
      }
    });
    const path = internalListenQuery({
      session_id: planned.sessionId,
      tenant_id: planned.principal.tenantId,
      sample_rate: planned.sampleRate,
      options: JSON.stringify(planned.options),
      resume_after_seq: planned.resumeAfterSeq,
    });
    const target = new URL(path, planned.node.url);
    target.protocol = target.protocol === "https:" ? "wss:" : "ws:";
    signRequest(ctx.origins.secret, "GET", path).then((sig) => {
      // Deno's WebSocket client takes headers: the origin checks the same HMAC as on every internal call.
      const origin = new WebSocket(target, { headers: { [SIGNATURE_HEADER]: sig } } as unknown as string[]);
      relay.attach(origin);
    }).catch((err) => relay.close(LISTEN_CLOSE.internal, `origin connection failed: ${String(err)}`));
    log.info("listen stream", { session_id: planned.sessionId, node_id: planned.node.id });
    return response;
  });
}
