/**
 * Phone calls into Parley sessions: the SipApplication the origin's SIP agent hands each INVITE to. The
 * Request-URI user selects a tenant's number (db/sip.ts; unknown → 404); a caller that authenticated by
 * digest must hold a credential of that same tenant (403 otherwise; trunks on the allow-list need none). The
 * call becomes a `sip` session row of the tenant, adopted by the origin's SessionManager (capacity, draining,
 * DELETE, say, SIGTERM all reach it like any session), with the number's options and greeting.
 *
 * Refusals: unknown number 404; wrong tenant 403; draining or this origin full 503 (another origin may take
 * it); the tenant at MAX_SESSIONS_PER_TENANT 486 Busy Here (no row is stored).
 */
import type { Database } from "../../db/client.ts";
import { findSipCredential, findSipNumber, insertCallSessionWithinLimit } from "../../db/sip.ts";
import { log as rootLog, type Logger } from "../../lib/log.ts";
import { registry } from "../../lib/metrics.ts";
import { SessionOptions } from "../../protocol/session_messages.ts";
import { OriginBusyError } from "../services.ts";
import type { PipelineFactory } from "../session/session.ts";
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

  #refuse(call: Call, status: number, outcome: string): Promise<void> {
    callOutcomes.inc({ outcome });
    this.#log.info("call refused", { call: call.id, user: call.user, status, outcome });
    return call.reject(status);
  }
}
