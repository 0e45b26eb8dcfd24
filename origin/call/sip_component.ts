/**
 * The origin's SIP agent as an OriginComponent: built from Config when SIP_PORT is set, listening on UDP and
 * TCP, taking calls through the SipGateway. The SessionManager ends the call sessions first on shutdown
 * (bye to followers, then a SIP BYE to each caller); this component's close() then ends whatever is still
 * ringing and closes the sockets.
 */
import type { Database } from "../../db/client.ts";
import type { Config } from "../../lib/config.ts";
import type { Logger } from "../../lib/log.ts";
import type { OriginComponent } from "../services.ts";
import type { PipelineFactory } from "../session/session.ts";
import type { SessionManager } from "../session/session_manager.ts";
import { SipUas } from "../sip/uas.ts";
import { SipGateway, type SipGatewayOptions } from "./sip_gateway.ts";

export interface SipComponent extends OriginComponent {
  readonly uas: SipUas;
}

export async function createSipComponent(
  config: Config,
  deps: {
    database: Database;
    sessions: SessionManager;
    nodeId: string;
    pipelineFactory: PipelineFactory;
    log: Logger;
    /** The origin's rooms (numbers whose options name a room publish calls into it). */
    rooms?: SipGatewayOptions["rooms"];
    /** Keep outbound RTP tick gaps (pacing benchmark). */
    pacingSamples?: number;
  },
): Promise<SipComponent | undefined> {
  if (config.SIP_PORT === undefined) return undefined;
  const gateway = new SipGateway({
    database: deps.database,
    sessions: deps.sessions,
    nodeId: deps.nodeId,
    realm: config.SIP_REALM,
    maxSessionsPerTenant: config.MAX_SESSIONS_PER_TENANT,
    rooms: deps.rooms,
    nodeTimeoutMs: config.NODE_TIMEOUT_MS,
    pipelineFactory: deps.pipelineFactory,
    log: deps.log,
  });
  const uas = new SipUas({
    host: config.SIP_HOST,
    port: config.SIP_PORT,
    app: gateway,
    rtpPortMin: config.SIP_RTP_PORT_MIN,
    rtpPortMax: config.SIP_RTP_PORT_MAX,
    trunks: config.SIP_TRUNKS,
    credentials: gateway.credentials,
    realm: config.SIP_REALM,
    mediaTimeoutMs: config.SIP_RTP_TIMEOUT_MS,
    rtpRealtimePriority: config.SIP_RTP_REALTIME_PRIORITY,
    pacingSamples: deps.pacingSamples,
    log: deps.log,
  });
  await uas.listen();
  deps.log.info("sip listening", { host: config.SIP_HOST, port: uas.localPort });
  let closing: Promise<void> | undefined;
  return {
    name: "sip",
    uas,
    ready: () => true,
    close: () => closing ??= uas.close(),
  };
}
