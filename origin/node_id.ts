import type { Config } from "../lib/config.ts";

/** Stable origin id: NODE_ID, or derived from host name and port. */
export function originNodeId(config: Config): string {
  return config.NODE_ID ?? `origin-${Deno.hostname()}-${config.ORIGIN_PORT}`;
}
