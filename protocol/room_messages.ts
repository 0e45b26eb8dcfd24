/**
 * Wire messages of a room listener's `events` data channel (WHEP listener ↔ origin), defined once for the origin
 * and for clients.
 *
 * The listener's client creates ONE data channel, `events`, before it makes its recvonly offer. The origin sends
 * `ListenerEvent`s on it (JSON text); the client may send `ListenerControl` messages on the same channel to
 * change what it hears.
 *
 * Room-wide events (captions, telop, room state) carry the room's `seq`, strictly increasing per room. A slow
 * listener may miss partial captions (they are coalesced or dropped under backpressure, so its seq numbers can
 * skip) but never a confirmed caption, telop or room state: those arrive in seq order or the listener is
 * disconnected (`slow_consumer`). `source` events are addressed to one listener and carry no seq.
 */
import { z } from "zod";
import { type Alternative, parseJsonMessage, type TelopEvent } from "./session_messages.ts";

/** What a listener asks to hear. */
export const LISTENER_SOURCES = ["speaker", "voice", "room"] as const;
export type ListenerSource = typeof LISTENER_SOURCES[number];

/** What the room's default (`room`) plays when the publisher is live. */
export const ROOM_DEFAULT_SOURCES = ["speaker", "voice", "track"] as const;
export type RoomDefaultSource = typeof ROOM_DEFAULT_SOURCES[number];

/** What a quiet (or absent) publisher's listeners hear. */
export const IDLE_SOURCES = ["silence", "track"] as const;
export type IdleSource = typeof IDLE_SOURCES[number];

/** What is actually playing to a listener. */
export type ProgramSource = "speaker" | "voice" | "track" | "silence";

export interface CaptionEvent {
  type: "caption";
  seq: number;
  /** The publisher session the caption came from. */
  session_id: string;
  segment_id: number;
  status: "partial" | "confirmed";
  text: string;
  stable_text: string;
  alternatives: Alternative[];
  start_ms: number;
  end_ms: number;
}

/** The publisher session's telop event, with the room's seq and the session it came from. */
export type RoomTelopEvent = Omit<TelopEvent, "seq"> & { seq: number; session_id: string };

export interface RoomStateEvent {
  type: "room";
  seq: number;
  room_id: string;
  /** Session id of the live publisher, null when none. */
  publisher: string | null;
  idle: boolean;
  default_source: RoomDefaultSource;
}

/** Why what a listener hears changed. */
export type SwitchReason = "request" | "idle" | "active" | "default" | "join";

/** Sent to one listener when what it hears changes (its request, idle, the room default). */
export interface SourceEvent {
  type: "source";
  selected: ListenerSource;
  playing: ProgramSource;
  /** Room frame index (10 ms) at which the switch was made (its crossfade's first frame). */
  frame: number;
  /** Room frame index that was next to be produced when the change was asked for (`frame` − this = delay). */
  requested_frame: number;
  /** What caused it: the listener's `request`, the room going `idle`/`active`, a `default` change, `join`. */
  reason: SwitchReason;
}

export interface ListenerErrorEvent {
  type: "error";
  code: string;
  message: string;
}

export type RoomEvent = CaptionEvent | RoomTelopEvent | RoomStateEvent;
/** A room event before the room assigns its seq. */
export type RoomEventBody = RoomEvent extends infer E ? E extends RoomEvent ? Omit<E, "seq"> : never : never;
export type ListenerEvent = RoomEvent | SourceEvent | ListenerErrorEvent;

export const ListenerControl = z.discriminatedUnion("type", [
  z.object({ type: z.literal("select"), source: z.enum(LISTENER_SOURCES) }).strict(),
]);
export type ListenerControl = z.infer<typeof ListenerControl>;

export const MAX_LISTENER_CONTROL_BYTES = 1024;

/** Parse one control message from a listener; never throws. */
export function parseListenerControl(
  raw: unknown,
): { ok: true; message: ListenerControl } | { ok: false; error: string } {
  return parseJsonMessage(ListenerControl, raw, MAX_LISTENER_CONTROL_BYTES);
}
