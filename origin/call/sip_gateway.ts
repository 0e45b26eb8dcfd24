/**
 * Phone calls into Parley sessions: the SipApplication the origin's SIP agent hands each INVITE to. The
 * Request-URI user selects a tenant's number (db/sip.ts; unknown → 404); a caller that authenticated by
 * digest must hold a credential of that same tenant (403 otherwise; trunks on the allow-list need none). The
 * call becomes a `sip` session row of the tenant, adopted by the origin's SessionManager (capacity, draining,
 * DELETE, say, SIGTERM all reach it like any session), with the number's options and greeting.
 *
 * Refusals: unknown number 404; wrong tenant 403; draining or this origin full 503 (another origin may take
 * it); the tenant at MAX_SESSIONS_PER_TENANT 486 Busy Here (no row is stored); a number's room that is
 * gone 404, on another live origin 503, or already published into 486.
 */
import type { Database } from "../../db/client.ts";
import { findSipCredential, findSipNumber, insertCallSessionWithinLimit } from "../../db/sip.ts";
import { log as rootLog, type Logger } from "../../lib/log.ts";
import { registry } from "../../lib/metrics.ts";
import { SessionOptions } from "../../protocol/session_messages.ts";
import { OriginBusyError } from "../services.ts";
import type { PipelineFactory, RoomPublishing } from "../session/session.ts";
import { claimRoomNode } from "../../db/rooms.ts";
import { ApiError } from "../../lib/errors.ts";
import type { SessionManager } from "../session/session_manager.ts";
import type { Call } from "../sip/call.ts";
import type { CredentialLookup, SipApplication } from "../sip/sip_types.ts";
import { SipSession } from "./sip_session.ts";

const callOutcomes = registry.counter("parley_sip_gateway_calls_total", "Incoming calls by outcome");

export interface SipGatewayOptions {
  database: Database;
  sessions: SessionManager;
  nodeId: string;
  realm: string;
  pipelineFactory: PipelineFactory;
  log?: Logger;
  recordOutboundGaps?: boolean;
  /** The origin's rooms: a number whose options name a room publishes its calls into it. */
  rooms?: RoomPublishing & { assertCanPublish(roomId: string, tenantId: string): Promise<void> };
  /** NODE_TIMEOUT_MS: a room placed on a node silent for this long may be taken over by this one. */
  nodeTimeoutMs?: number;
  /** MAX_SESSIONS_PER_TENANT: live sessions of a tenant, calls and WebRTC sessions together. Default 100. */
  maxSessionsPerTenant?: number;
}

export class SipGateway implements SipApplication {
  readonly #o: SipGatewayOptions;
  readonly #log: Logger;

  constructor(o: SipGatewayOptions) {
    this.#o = o;
    this.#log = (o.log ?? rootLog).child({ component: "sip_gateway" });
  }

  /** Digest lookup for the SIP agent: the stored HA1 hashes of user@realm. */
  readonly credentials: CredentialLookup = async (username, realm) => {
    const row = await findSipCredential(this.#o.database, username, realm);
    return row ? { ha1: { md5: row.ha1Md5, sha256: row.ha1Sha256 } } : null;
  };

  async onCall(call: Call): Promise<void> {
    const db = this.#o.database;
    if (this.#o.sessions.draining) return this.#refuse(call, 503, "draining");
    const number = await findSipNumber(db, call.user);
    if (!number) return this.#refuse(call, 404, "unknown_number");
    if (call.authenticatedUser !== undefined) {
      const cred = await findSipCredential(db, call.authenticatedUser, this.#o.realm);
      if (!cred || cred.tenantId !== number.tenantId) return this.#refuse(call, 403, "wrong_tenant");
    }
    const options = SessionOptions.safeParse(number.options ?? {});
    if (!options.success) {
      this.#log.error("stored number options are invalid", { number: number.number });
      return this.#refuse(call, 500, "bad_options");
    }
    if (this.#o.sessions.load >= this.#o.sessions.capacity) return this.#refuse(call, 503, "full");
    const room = options.data.room;
    if (room) {
      const refused = await this.#roomRefusal(room, number.tenantId);
      if (refused) return this.#refuse(call, refused.status, refused.outcome);
    }
    if (call.endReason !== undefined) return; // CANCEL during the lookups
    const id = crypto.randomUUID();
    const over = await insertCallSessionWithinLimit(db, {
      id,
      tenantId: number.tenantId,
      nodeId: this.#o.nodeId,
      mode: options.data.mode,
      options: options.data,
      maxLive: this.#o.maxSessionsPerTenant ?? 100,
    });
    // The tenant's lines are all in use: 486 Busy Here, the caller hears busy. Not 503: that tells a proxy
    // to fail over to another server, and every origin would refuse the same tenant.
    if (over) {
      this.#log.info("tenant at its session limit", { tenant_id: number.tenantId, live: over.live });
      return this.#refuse(call, 486, "tenant_limit");
    }
    const session = new SipSession({
      id,
      tenantId: number.tenantId,
      nodeId: this.#o.nodeId,
      options: options.data,
      greeting: number.greeting,
      call,
      database: db,
      pipelineFactory: this.#o.pipelineFactory,
      log: this.#o.log,
      recordOutboundGaps: this.#o.recordOutboundGaps,
      rooms: this.#o.rooms,
    });
    try {
      this.#o.sessions.adopt(session);
    } catch (err) {
      const status = err instanceof OriginBusyError ? 503 : 500;
      await session.close("origin_shutdown", "origin could not take the call");
      return this.#refuse(call, status, "not_adopted");
    }
    callOutcomes.inc({ outcome: "answered" });
    this.#log.info("call → session", { session_id: id, number: number.number, call: call.id });
    await session.start();
  }

  /**
   * Can a call publish into the room from here? A room lives on one origin (its listeners are there): this
   * one takes it when it has none or its origin is gone. Refusals: the room lives on another live origin 503
   * (a proxy may try the next server, which may be that origin); the room is gone 404; it has a publisher
   * and refuses a second 486 Busy Here.
   */
  async #roomRefusal(roomId: string, tenantId: string): Promise<{ status: number; outcome: string } | null> {
    if (!this.#o.rooms) return { status: 503, outcome: "no_rooms_here" };
    const node = await claimRoomNode(this.#o.database, roomId, this.#o.nodeId, this.#o.nodeTimeoutMs ?? 6000);
    if (node === null) return { status: 404, outcome: "room_not_found" };
    if (node !== this.#o.nodeId) return { status: 503, outcome: "room_elsewhere" };
    try {
      await this.#o.rooms.assertCanPublish(roomId, tenantId);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return { status: 404, outcome: "room_not_found" };
      if (err instanceof ApiError && err.status === 409) return { status: 486, outcome: "room_busy" };
      throw err;
    }
    return null;
  }

  #refuse(call: Call, status: number, outcome: string): Promise<void> {
    callOutcomes.inc({ outcome });
    this.#log.info("call refused", { call: call.id, user: call.user, status, outcome });
    return call.reject(status);
  }
}
