/**
 * Rooms REST and internal wire types (issue 21), defined once for the edge, the origin and clients.
 *
 * Public (edge):
 *   POST   /v1/rooms                         CreateRoomRequest → 201 RoomInfo
 *   GET    /v1/rooms, /v1/rooms/{id}         RoomInfo (+ live state from the room's origin when it is placed)
 *   DELETE /v1/rooms/{id}                    closes it on its origin (listeners end), marks the row deleted
 *   POST   /v1/rooms/{id}/listeners          application/sdp recvonly offer (+ `events` channel) → 201 answer
 *   DELETE /v1/rooms/{id}/listeners/{lid}
 *   GET    /v1/rooms/{id}/events             SSE of room events (captions, telop, room state), Last-Event-ID
 *   POST   /v1/tracks (audio/wav), GET/DELETE /v1/tracks/{id}
 *
 * Internal (edge → origin, signed):
 *   POST   /internal/rooms/{id}/listeners    InternalListenerRequest → 201 InternalListenerResponse
 *   DELETE /internal/rooms/{id}/listeners/{lid}   → 204 | 404
 *   GET    /internal/rooms/{id}              → 200 RoomLive | 404 (not materialized here)
 *   DELETE /internal/rooms/{id}              → 204 (closes it here; idempotent)
 */
import { z } from "zod";
import { IDLE_SOURCES, LISTENER_SOURCES, ROOM_DEFAULT_SOURCES } from "./room_messages.ts";

export const MAX_ROOM_LISTENERS = 2000;

/**
 * How listeners are sent Opus.
 * - `full` (default): each listener has its own encoder on the origin, as the client offers (~32 kbit/s
 *   fullband, 20 ms packets).
 * - `fanout`: each listener's own encoder at 96 kbit/s fullband CELT in 60 ms packets (less origin CPU per
 *   listener, three times the bandwidth, 40 ms more delay). See origin/rooms/opus_profile.ts.
 * - `shared`: each program (speaker, voice, track, silence) is encoded once (48 kbit/s, 20 ms packets) and the
 *   same packets are forwarded to every listener hearing it: the origin's cost per listener is SRTP and one
 *   UDP send per packet. Switches land on 20 ms packet boundaries (at most one frame after the request) and
 *   cut without a crossfade. See origin/rooms/forward_listener.ts.
 */
export const ROOM_AUDIO_PROFILES = ["full", "fanout", "shared"] as const;
export type RoomAudioProfile = typeof ROOM_AUDIO_PROFILES[number];

export const RoomOptionsInput = z.object({
  /** What listeners hear while the publisher is quiet or absent. */
  idle_source: z.enum(IDLE_SOURCES).default("silence"),
  /** Quiet this long → idle. */
  idle_after_ms: z.number().int().min(200).max(3_600_000).default(5_000),
  /** Caption language (BCP 47 tag, informative: the publisher's session recognizes it). */
  caption_language: z.string().min(2).max(16).default("en"),
  /** What `room` listeners hear while the publisher is live. */
  default_source: z.enum(ROOM_DEFAULT_SOURCES).default("speaker"),
  /** A second publisher: `reject` (409) or `replace` the current one. */
  publisher_policy: z.enum(["reject", "replace"]).default("reject"),
  max_listeners: z.number().int().min(1).max(MAX_ROOM_LISTENERS).default(500),
  /** The backing track played as the idle source (`track`) or default source `track`. */
  track_id: z.uuid().nullable().default(null),
  crossfade_ms: z.union([z.literal(10), z.literal(20)]).default(10),
  audio_profile: z.enum(ROOM_AUDIO_PROFILES).default("full"),
}).strict();
export type RoomOptionsInput = z.infer<typeof RoomOptionsInput>;

export const CreateRoomRequest = z.object({
  name: z.string().max(200).default(""),
  options: RoomOptionsInput.default(RoomOptionsInput.parse({})),
}).strict().superRefine((r, ctx) => {
  const o = r.options;
  if ((o.idle_source === "track" || o.default_source === "track") && !o.track_id) {
    ctx.addIssue({
      code: "custom",
      path: ["options", "track_id"],
      message: "a `track` source needs track_id",
    });
  }
});
export type CreateRoomRequest = z.infer<typeof CreateRoomRequest>;

/** Live state from the origin that holds the room. */
export interface RoomLive {
  listeners: number;
  publisher: string | null;
  idle: boolean;
  default_source: string;
  last_seq: number;
  switches: number;
  idle_ms: number;
}

export interface RoomInfo {
  id: string;
  name: string;
  options: RoomOptionsInput;
  node_id: string | null;
  publisher_session_id: string | null;
  last_seq: number;
  created_at: string;
  /** Present when the room is materialized on a live origin. */
  live?: RoomLive | null;
  links: { self: string; listeners: string; events: string; page: string };
}

export interface TrackInfo {
  id: string;
  name: string;
  duration_ms: number;
  size_bytes: number;
  sample_rate: 48000;
  channels: 1;
  bits_per_sample: 16;
  /** The uploaded format, before conversion. */
  source: string;
  created_at: string;
}

export const ListenerQuery = z.object({ source: z.enum(LISTENER_SOURCES).default("room") }).strict();

export const INTERNAL_ROOMS_PATH = "/internal/rooms";

export interface InternalListenerRequest {
  tenant_id: string;
  listener_id: string;
  sdp: string;
  source: typeof LISTENER_SOURCES[number];
}

export interface InternalListenerResponse {
  listener_id: string;
  node_id: string;
  sdp: string;
}

/** NOTIFY channel of room_events inserts; payload `<room_id>:<seq>`. */
export const ROOM_EVENTS_CHANNEL = "parley_room_events";
