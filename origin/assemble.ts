/**
 * Builds an origin's working parts from config: the shared speech engines (EngineHub: VAD + ASR + TTS in
 * worker pools), the WebRTC SessionManager whose sessions get a SpeechPipeline from the hub, and (when
 * present) the TTS job worker. Kept apart from server.ts so the HTTP/registry layer stays independent of the
 * heavy parts. Order matters on close: OriginServer ends sessions first, then closes components in reverse.
 */
import type { Database } from "../db/client.ts";
import type { Config } from "../lib/config.ts";
import type { Logger } from "../lib/log.ts";
import { EngineHub } from "./pipeline/engine_hub.ts";
import { engineDescriptors, engineHubConfig } from "./engine_config.ts";
import type { SessionConfig } from "./session/session.ts";
import { SessionManager } from "./session/session_manager.ts";
import type { OriginComponent } from "./services.ts";
import type { OriginParts } from "./server.ts";
import { originNodeId } from "./node_id.ts";
import { createTtsJobWorker } from "./tts_jobs/component.ts";
import { livePriority } from "./tts_jobs/priority_gate.ts";
import { FileTranscriber } from "./transcribe/file_transcriber.ts";
import { RoomHost } from "./rooms/room_host.ts";
import { RoomManager } from "./rooms/room_manager.ts";
import { createSipComponent } from "./call/sip_component.ts";

/** What each session of this origin runs with, from Config. */
export function sessionConfig(config: Config): Partial<SessionConfig> {
  return {
    iceDisconnectedGraceMs: config.ICE_DISCONNECTED_GRACE_MS,
    mediaTimeoutMs: config.MEDIA_TIMEOUT_MS,
    connectTimeoutMs: config.SESSION_CONNECT_TIMEOUT_MS,
    eventBacklogMax: config.SESSION_EVENT_BACKLOG_MAX,
    eventMaxWaitMs: config.SESSION_EVENT_MAX_WAIT_MS,
  };
}

export async function assembleOrigin(config: Config, database: Database, log: Logger): Promise<OriginParts> {
  const hub = await EngineHub.create(engineHubConfig(config));
  const engines: OriginComponent = {
    name: "engines",
    ready: () => hub.ready().ready,
    close: () => hub.close(),
  };
  const roomHost = new RoomHost({
    database,
    nodeId: originNodeId(config),
    manager: new RoomManager({
      maxRooms: config.ROOMS_PER_ORIGIN,
      forward: { workers: config.ROOM_FORWARD_WORKERS, playoutMs: config.ROOM_FORWARD_PLAYOUT_MS },
      log,
    }),
    log,
  });
  const sessions = new SessionManager({
    rooms: roomHost,
    database,
    nodeId: originNodeId(config),
    capacity: config.NODE_CAPACITY,
    log,
    sessionConfig: sessionConfig(config),
    pipelineFactory: (host, options) => hub.createPipeline(host, options),
  });
  // Realtime first: while live work waits for a speech worker, batch TTS job workers pause between chunks.
  // Uploaded files' decodes (background) do not count: they wait behind TTS jobs, not the other way round.
  livePriority.addSource(() => hub.stats().speechLiveQueue);
  const ttsJobs = await createTtsJobWorker(config, database, log, { nodeId: originNodeId(config) });
  const jobs: OriginComponent = {
    name: ttsJobs.name,
    ready: () => ttsJobs.ready(),
    close: () => ttsJobs.close(),
    closeOnRecycle: true,
  };
  // Phone calls (SIP_PORT set): last in the list, so shutdown closes it first after the sessions ended.
  const sip = await createSipComponent(config, {
    database,
    sessions,
    nodeId: originNodeId(config),
    pipelineFactory: (host, options) => hub.createPipeline(host, options),
    log,
    rooms: roomHost,
  });
  const transcriber = new FileTranscriber(hub, log.child({ component: "file_transcriber" }));
  const files: OriginComponent = {
    name: "transcriber",
    ready: () => true,
    close: () => transcriber.close(),
  };
  const rooms: OriginComponent = { name: "rooms", ready: () => true, close: () => roomHost.close() };
  return {
    sessions,
    transcriber,
    rooms: roomHost,
    components: sip ? [engines, files, rooms, jobs, sip] : [engines, files, rooms, jobs],
    engines: engineDescriptors(config),
  };
}
