/**
 * Rooms (issue 21), see protocol/rooms.ts for the paths. Management needs the `sessions` scope; watching
 * (GET, SSE events, listening over WHEP) also works with a `rooms:view` token narrowed to the room.
 *
 * Placement: a room lives on one origin. The edge places it when its first publisher (POST /v1/sessions with
 * options.room, edge/routes/sessions.ts) or first listener arrives: the least-loaded live origin, recorded in
 * `rooms.node_id` with a conditional update so concurrent edges agree; a room whose origin died is placed anew.
 * Listeners always go to the room's origin (never retried elsewhere: that would split the room).
 */
import { z } from "zod";
import { liveNodeUrl, pickNodes } from "../../db/nodes.ts";
import {
  claimRoomNode,
  createRoom,
  deleteRoom,
  listRooms,
  roomEventsAfter,
  roomOfTenant,
  type RoomRow,
  trackOfTenant,
} from "../../db/rooms.ts";
import { ApiError } from "../../lib/errors.ts";
import { readBodyLimited, readJson, validationError } from "../../lib/http.ts";
import { registry } from "../../lib/metrics.ts";
import type { RoomEvent } from "../../protocol/room_messages.ts";
import {
  CreateRoomRequest,
  INTERNAL_ROOMS_PATH,
  type InternalListenerRequest,
  type InternalListenerResponse,
  ListenerQuery,
  type RoomInfo,
  type RoomLive,
  RoomOptionsInput,
} from "../../protocol/rooms.ts";
import { checkOffer, MAX_SDP_BYTES } from "../../protocol/sdp.ts";
import { assertRoomAllowed, type EdgeVariables, hasScope, type Principal } from "../auth.ts";
import type { EdgeApp, EdgeContext } from "../context.ts";
import { guard } from "../context.ts";
import { OriginUnreachableError } from "../origin_client.ts";
import { rateLimit } from "../rate_limit.ts";
import { roomEventFanout } from "../room_feed.ts";
import { SSE_HEADERS } from "../sse.ts";
import { trackOpenStream } from "../open_streams.ts";
import type { MiddlewareHandler } from "hono";

const listenerSetup = registry.histogram(
  "parley_edge_room_listener_setup_seconds",
  "POST /v1/rooms/{id}/listeners: offer received → answer returned",
);
const listenersCreated = registry.counter(
  "parley_edge_room_listeners_total",
  "Listener offers through this edge, by outcome",
);
const viewersOpen = registry.gauge("parley_edge_room_viewers", "Open SSE room viewers on this edge");
const viewerEvents = registry.counter(
  "parley_edge_room_viewer_events_total",
  "Room events sent to SSE viewers",
);
const viewersDropped = registry.counter(
  "parley_edge_room_viewers_dropped_total",
  "SSE room viewers ended because they read too slowly",
);

const ROOM_ID = z.uuid();
const LISTENER_ID = z.uuid();
/** SSE frames a viewer may have waiting before it is ended as too slow (it reconnects with Last-Event-ID). */
const VIEWER_MAX_QUEUED = 2000;

export const ListRoomsQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
});

export const RoomEventsQuery = z.object({
  after_seq: z.coerce.number().int().min(0).max(2 ** 31 - 1).default(0)
    .describe("replay events with seq greater than this (Last-Event-ID wins if greater)"),
});

function roomInfo(row: RoomRow, live?: RoomLive | null): RoomInfo {
  return {
    id: row.id,
    name: row.name,
    options: RoomOptionsInput.parse(row.options ?? {}),
    node_id: row.nodeId,
    publisher_session_id: row.publisherSessionId,
    last_seq: Number(row.lastSeq),
    created_at: row.createdAt,
    ...(live !== undefined ? { live } : {}),
    links: {
      self: `/v1/rooms/${row.id}`,
      listeners: `/v1/rooms/${row.id}/listeners`,
      events: `/v1/rooms/${row.id}/events`,
      page: `/rooms/${row.id}`,
    },
  };
}

/** The tenant's live room, 404 otherwise (also for a token narrowed to another room: 403). */
export async function loadRoom(ctx: EdgeContext, p: Principal, id: string): Promise<RoomRow> {
  if (!ROOM_ID.safeParse(id).success) throw new ApiError(404, "not_found", "no such room");
  assertRoomAllowed(p, id);
  const row = await roomOfTenant(ctx.database, p.tenantId, id);
  if (!row) throw new ApiError(404, "not_found", "no such room");
  return row;
}

/**
 * The origin the room lives on, placing it on the least-loaded live origin when it has none (or its origin is
 * gone). 503 when no origin can take it.
 */
export async function placeRoom(ctx: EdgeContext, row: RoomRow): Promise<{ id: string; url: string }> {
  const timeout = ctx.config.NODE_TIMEOUT_MS;
  if (row.nodeId) {
    const url = await liveNodeUrl(ctx.database, row.nodeId, timeout);
    if (url) return { id: row.nodeId, url };
  }
  const nodes = await pickNodes(ctx.database, timeout);
  if (nodes.length === 0) {
    throw new ApiError(503, "no_origin_available", "no origin node can take the room now", {
      "Retry-After": "2",
    });
  }
  const placed = await claimRoomNode(ctx.database, row.id, nodes[0].id, timeout);
  if (!placed) throw new ApiError(404, "not_found", "no such room");
  const url = placed === nodes[0].id ? nodes[0].url : await liveNodeUrl(ctx.database, placed, timeout);
  if (!url) {
    throw new ApiError(503, "no_origin_available", "the room's origin is not live", { "Retry-After": "2" });
  }
  return { id: placed, url };
}

/** The room's live state from its origin, null when it is not materialized (or its origin is gone). */
async function liveState(ctx: EdgeContext, row: RoomRow, requestId: string): Promise<RoomLive | null> {
  if (!row.nodeId) return null;
  const url = await liveNodeUrl(ctx.database, row.nodeId, ctx.config.NODE_TIMEOUT_MS);
  if (!url) return null;
  try {
    const res = await ctx.origins.call(url, "GET", `${INTERNAL_ROOMS_PATH}/${row.id}`, {
      requestId,
      timeoutMs: 3000,
    });
    if (res.status !== 200) return null;
    const s = res.json<RoomLive & { listeners: number }>();
    return {
      listeners: s.listeners,
      publisher: s.publisher,
      idle: s.idle,
      default_source: s.default_source,
      last_seq: s.last_seq,
      switches: s.switches,
      idle_ms: s.idle_ms,
    };
  } catch {
    return null;
  }
}

/** `sessions` (manage) or `rooms:view` (watch/listen; a token narrowed to a room only for that room). */
function viewGuard(ctx: EdgeContext): MiddlewareHandler<{ Variables: EdgeVariables }> {
  const limit = rateLimit(ctx.limiter);
  return async (c, next) => {
    const p = await ctx.auth.authenticate(c.req.header("authorization"));
    if (!hasScope(p, "rooms:view") && !hasScope(p, "sessions")) {
      throw new ApiError(403, "forbidden", "this credential lacks the 'rooms:view' scope");
    }
    c.set("principal", p);
    await limit(c, next);
  };
}

function originError(status: number, body: { error?: { code?: string; message?: string } }): ApiError {
  const code = (body.error?.code ?? "origin_error") as "origin_error";
  const message = body.error?.message ?? `origin answered ${status}`;
  return new ApiError(
    status >= 400 && status < 500 ? status : 502,
    code,
    message,
    status === 429 ? { "retry-after": "5" } : {},
  );
}

export function roomRoutes(app: EdgeApp, ctx: EdgeContext): void {
  const manage = guard(ctx, "sessions");
  const view = viewGuard(ctx);

  app.post("/v1/rooms", manage, async (c) => {
    const p = c.get("principal");
    const parsed = CreateRoomRequest.safeParse(await readJson(c, 16 * 1024));
    if (!parsed.success) throw validationError(parsed.error.issues);
    const { name, options } = parsed.data;
    if (options.track_id && !(await trackOfTenant(ctx.database, p.tenantId, options.track_id))) {
      throw new ApiError(400, "validation_failed", `options.track_id: no such track ${options.track_id}`);
    }
    const row = await createRoom(ctx.database, { tenantId: p.tenantId, name, options });
    c.get("log").info("room created", { room_id: row.id });
    c.header("Location", `/v1/rooms/${row.id}`);
    return c.json(roomInfo(row), 201);
  });

  app.get("/v1/rooms", manage, async (c) => {
    const q = ListRoomsQuery.safeParse(c.req.query());
    if (!q.success) throw validationError(q.error.issues);
    const rows = await listRooms(ctx.database, c.get("principal").tenantId, q.data.limit);
    return c.json({ rooms: rows.map((r) => roomInfo(r)) });
  });

  app.get("/v1/rooms/:id", view, async (c) => {
    const row = await loadRoom(ctx, c.get("principal"), c.req.param("id") ?? "");
    return c.json(roomInfo(row, await liveState(ctx, row, c.get("requestId"))));
  });

  app.delete("/v1/rooms/:id", manage, async (c) => {
    const p = c.get("principal");
    const row = await loadRoom(ctx, p, c.req.param("id") ?? "");
    await deleteRoom(ctx.database, p.tenantId, row.id);
    if (row.nodeId) {
      const url = await liveNodeUrl(ctx.database, row.nodeId, ctx.config.NODE_TIMEOUT_MS);
      if (url) {
        await ctx.origins.call(url, "DELETE", `${INTERNAL_ROOMS_PATH}/${row.id}`, {
          requestId: c.get("requestId"),
        }).catch((err) =>
          c.get("log").warn("room close on origin failed", { room_id: row.id, err: String(err) })
        );
      }
    }
    c.get("log").info("room deleted", { room_id: row.id });
    return c.body(null, 204);
  });

  // ------------------------------------------------------------------ listeners (WHEP)

  app.post("/v1/rooms/:id/listeners", view, async (c) => {
    const t0 = performance.now();
    const p = c.get("principal");
    const row = await loadRoom(ctx, p, c.req.param("id") ?? "");
    const type = (c.req.header("content-type") ?? "").toLowerCase();
    if (!type.startsWith("application/sdp")) {
      throw new ApiError(
        415,
        "unsupported_media_type",
        "expected Content-Type: application/sdp (a WHEP offer)",
      );
    }
    const q = ListenerQuery.safeParse(c.req.query());
    if (!q.success) throw validationError(q.error.issues);
    const sdp = new TextDecoder().decode(await readBodyLimited(c, MAX_SDP_BYTES));
    const check = checkOffer(sdp);
    if (!check.ok) {
      listenersCreated.inc({ outcome: "bad_offer" });
      throw new ApiError(400, "bad_request", `invalid SDP offer: ${check.message}`);
    }
    const node = await placeRoom(ctx, row);
    const listenerId = crypto.randomUUID();
    const req: InternalListenerRequest = {
      tenant_id: p.tenantId,
      listener_id: listenerId,
      sdp,
      source: q.data.source,
    };
    let res;
    try {
      res = await ctx.origins.call(node.url, "POST", `${INTERNAL_ROOMS_PATH}/${row.id}/listeners`, {
        body: JSON.stringify(req),
        contentType: "application/json",
        requestId: c.get("requestId"),
        timeoutMs: ctx.config.SESSION_CONNECT_TIMEOUT_MS,
      });
    } catch (e) {
      listenersCreated.inc({ outcome: "unreachable" });
      if (e instanceof OriginUnreachableError) {
        throw new ApiError(503, "no_origin_available", "the room's origin is unreachable", {
          "Retry-After": "2",
        });
      }
      throw e;
    }
    if (res.status !== 201) {
      listenersCreated.inc({ outcome: String(res.status) });
      let body = {};
      try {
        body = res.json();
      } catch { /* generic */ }
      throw originError(res.status, body);
    }
    const answer = res.json<InternalListenerResponse>();
    listenersCreated.inc({ outcome: "created" });
    listenerSetup.observe((performance.now() - t0) / 1000);
    c.get("log").info("room listener created", {
      room_id: row.id,
      listener_id: listenerId,
      node_id: node.id,
    });
    c.header("Location", `/v1/rooms/${row.id}/listeners/${listenerId}`);
    c.header("Content-Type", "application/sdp");
    return c.body(answer.sdp, 201);
  });

  app.delete("/v1/rooms/:id/listeners/:lid", view, async (c) => {
    const row = await loadRoom(ctx, c.get("principal"), c.req.param("id") ?? "");
    const lid = c.req.param("lid") ?? "";
    if (!LISTENER_ID.safeParse(lid).success) throw new ApiError(404, "not_found", "no such listener");
    const url = row.nodeId ? await liveNodeUrl(ctx.database, row.nodeId, ctx.config.NODE_TIMEOUT_MS) : null;
    if (!url) throw new ApiError(404, "not_found", "no such listener");
    const res = await ctx.origins.call(url, "DELETE", `${INTERNAL_ROOMS_PATH}/${row.id}/listeners/${lid}`, {
      requestId: c.get("requestId"),
    });
    if (res.status === 404) throw new ApiError(404, "not_found", "no such listener");
    if (res.status >= 300) throw new ApiError(502, "origin_error", `origin answered ${res.status}`);
    return c.body(null, 204);
  });

  // ------------------------------------------------------------------ SSE viewers

  app.get("/v1/rooms/:id/events", view, async (c) => {
    const row = await loadRoom(ctx, c.get("principal"), c.req.param("id") ?? "");
    const q = RoomEventsQuery.safeParse(c.req.query());
    if (!q.success) throw validationError(q.error.issues);
    let after = q.data.after_seq;
    const lastEventId = c.req.header("last-event-id");
    if (lastEventId !== undefined) {
      const n = Number(lastEventId);
      if (!Number.isInteger(n) || n < 0) {
        throw new ApiError(400, "validation_failed", "Last-Event-ID: expected a seq");
      }
      after = Math.max(after, n);
    }
    const fanout = roomEventFanout(ctx.database);
    if (fanout.viewers >= ctx.config.ROOM_VIEWERS_PER_EDGE) {
      throw new ApiError(503, "unavailable", "this edge serves its maximum of room viewers", {
        "Retry-After": "2",
      });
    }
    const log = c.get("log");
    const enc = new TextEncoder();
    let last = after;
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    let leave: (() => void) | undefined;
    let untrack: (() => void) | undefined;
    let keepAlive: ReturnType<typeof setInterval> | undefined;
    let done = false;
    let replaying = true;
    const held: RoomEvent[] = [];
    const stop = () => {
      if (done) return;
      done = true;
      clearInterval(keepAlive);
      leave?.();
      untrack?.();
      viewersOpen.dec();
      try {
        controller.close();
      } catch { /* already closed */ }
    };
    const send = (events: RoomEvent[]) => {
      if (done) return;
      let out = "";
      let n = 0;
      for (const ev of events) {
        if (ev.seq <= last) continue;
        last = ev.seq;
        out += `id: ${ev.seq}\nevent: ${ev.type}\ndata: ${JSON.stringify(ev)}\n\n`;
        n++;
      }
      if (!out) return;
      if ((controller.desiredSize ?? 0) < -VIEWER_MAX_QUEUED) {
        viewersDropped.inc();
        stop();
        return;
      }
      viewerEvents.inc(undefined, n);
      controller.enqueue(enc.encode(out));
    };
    const sink = (events: RoomEvent[]) => {
      if (replaying) held.push(...events);
      else send(events);
    };
    const body = new ReadableStream<Uint8Array>({
      async start(ctrl) {
        controller = ctrl;
        viewersOpen.inc();
        untrack = trackOpenStream(stop);
        ctrl.enqueue(enc.encode(`retry: 2000\n: room ${row.id} after seq ${after}\n\n`));
        try {
          const joined = await fanout.join(row.id, sink);
          leave = joined.leave;
          if (done) return leave();
          // Replay (after, upTo] from the table; the shared reader delivers everything after upTo.
          while (last < joined.upTo && !done) {
            const rows = await roomEventsAfter(ctx.database, row.id, last, 500, joined.upTo);
            if (rows.length === 0) break;
            send(rows);
          }
          replaying = false;
          send(held.splice(0));
          keepAlive = setInterval(() => {
            if (!done) controller.enqueue(enc.encode(": keep-alive\n\n"));
          }, 15_000);
        } catch (err) {
          log.error("room viewer failed", { err: String(err), room_id: row.id });
          try {
            ctrl.enqueue(
              enc.encode(`event: error\ndata: {"code":"unavailable","message":"cannot follow now"}\n\n`),
            );
          } catch { /* closed */ }
          stop();
        }
      },
      cancel() {
        stop();
      },
    }, new CountQueuingStrategy({ highWaterMark: 16 }));
    return new Response(body, { status: 200, headers: SSE_HEADERS });
  });
}
