/**
 * Types shared by the origin's room core (one speaker → many WHEP listeners), and its error kinds.
 *
 * Ownership: RoomManager → Room → { RoomController (clock subscription, per-listener program state),
 * IdleDetector (timer), BackingTrack (loop cursor), Listener (peer, source + track, data channel, timers) }.
 * Every class has an idempotent `close()` that releases its own resources and those of its children.
 *
 * Audio everywhere in a room: 48 kHz mono Int16, 10 ms frames of 480 samples (FRAME_SAMPLES).
 */
import { ApiError } from "../../lib/errors.ts";
import type {
  IdleSource,
  ListenerEvent,
  ListenerSource,
  ProgramSource,
  RoomDefaultSource,
  SwitchReason,
} from "../../protocol/room_messages.ts";
import type { RoomAudioProfile } from "../../protocol/rooms.ts";
import type { ServerEvent } from "../../protocol/session_messages.ts";
import type { InboundFrame } from "../pipeline/types.ts";

export type { IdleSource, ListenerSource, ProgramSource, RoomDefaultSource };

/** Receives exactly one 480-sample frame per room tick. The buffer is only valid during the call. */
export interface FrameSink {
  pushFrame(samples: Int16Array): void;
}

/**
 * A listener of a `shared` room: it is handed the program's encoded 20 ms packet, not PCM
 * (origin/rooms/program_encoder.ts); the controller switches it only on packet boundaries.
 */
export interface PacketSink {
  readonly kind: "packets";
  /**
   * `at`: when the tick that hands it over was due (TickClock.frameAt). A sink that sends later (a forward
   * worker's playout) schedules from it, so the main isolate's timer lateness does not reach the listeners.
   */
  pushPacket(payload: Uint8Array, at?: number): void;
}

export type ListenerState = "new" | "connecting" | "connected" | "closed";

/** What a room needs of a listener, whichever way it is sent audio (listener.ts, forward_listener.ts). */
export interface RoomListener {
  readonly id: string;
  readonly roomId: string;
  selected: ListenerSource;
  readonly state: ListenerState;
  readonly reason: ListenerCloseReason | null;
  /** "ended" once closed (leak checks). */
  readonly trackState: string;
  readonly peerState: string;
  readonly timersPending: boolean;
  /** 10 ms frames sent so far, and the largest gap between two sends (ms); benches reset them. */
  frames: number;
  maxGapMs: number;
  /** Time spent handing audio to the peer (total and worst call), ms. */
  onDataMs: number;
  onDataMaxMs: number;
  readonly gapsMs: number[] | undefined;
  start(offerSdp: string): Promise<string>;
  send(ev: ListenerEvent): void;
  close(reason?: ListenerCloseReason): void;
}

/** A 10 ms tick source (origin/session/outbound_audio.ts `FrameClock`; a manual clock in unit tests). */
export interface TickClock {
  add(tick: () => void): void;
  remove(tick: () => void): void;
  /**
   * During a tick: the instant its frame was due (epoch ms, `performance.timeOrigin` based, so it means the
   * same in a worker), however late the timer fired. Absent: the clock keeps no schedule.
   */
  readonly frameAt?: number;
}

export interface RoomOptions {
  /** Display name (not unique). */
  name?: string;
  /** What `room` listeners hear while the publisher is live. Default `speaker`. */
  defaultSource: RoomDefaultSource;
  /** What every listener hears while the publisher is quiet or absent. Default `silence`. */
  idleSource: IdleSource;
  /** No speech energy from the publisher (inbound or synthesized) for this long → idle. */
  idleAfterMs: number;
  /** Listeners at most; one more is a RoomFullError (429). */
  maxListeners: number;
  /** A second publisher: `reject` (409, default) or `replace` the current one. */
  publisherPolicy: "reject" | "replace";
  /** Crossfade length of a switch, 10 or 20 ms (whole frames). */
  crossfadeMs: number;
  /**
   * How listeners are sent Opus: `full` or `fanout` (an encoder per listener, opus_profile.ts), or `shared`
   * (each program encoded once and forwarded, program_encoder.ts / forward_listener.ts).
   */
  audioProfile: RoomAudioProfile;
}

export const DEFAULT_ROOM_OPTIONS: RoomOptions = {
  defaultSource: "speaker",
  idleSource: "silence",
  idleAfterMs: 5_000,
  maxListeners: 500,
  publisherPolicy: "reject",
  crossfadeMs: 10,
  audioProfile: "full",
};

/** What the room knows of the session publishing into it (the Session implements it). */
export interface RoomPublisher {
  readonly sessionId: string;
  /** The room gave the floor to another publisher (policy `replace`); the feed is already detached. */
  onReplaced?(): void;
}

/**
 * What a publishing Session calls. Frames are pushed as they happen; nothing here blocks or throws into the
 * session's media path (a closed room or a detached feed ignores calls).
 */
export interface RoomPublisherFeed {
  readonly roomId: string;
  readonly detached: boolean;
  /** Every inbound frame of the publisher's mic (InboundAudio's onFrame): the `speaker` source. */
  onInboundFrame(frame: InboundFrame): void;
  /** Every frame the session hands its own RTCAudioSource (synthesized voice or silence): the `voice` source. */
  onOutboundFrame(samples: Int16Array): void;
  /** Every event the session sent its client, after it was persisted; captions and telop reach listeners. */
  onEvent(event: ServerEvent): void;
  /** The session ended or left the room. Idempotent. Listeners go idle. */
  detach(): void;
}

export type ListenerCloseReason =
  | "client_hangup"
  | "removed"
  | "ice_failed"
  | "ice_disconnected_timeout"
  | "slow_consumer"
  | "room_closed"
  | "error";

export type { SwitchReason };

/** One switch made by the controller (tests, events, metrics). */
export interface SwitchRecord {
  listenerId: string;
  from: ProgramSource;
  to: ProgramSource;
  /** Frame index that was next to be produced when the change was requested. */
  requestedFrame: number;
  /** Frame index whose output starts the crossfade (the frame boundary of the switch). */
  appliedFrame: number;
  /** performance.now() at the start of the tick that produced appliedFrame. */
  atMs: number;
  reason: SwitchReason;
}

/** The room already has a publisher and its policy is `reject`. */
export class RoomBusyError extends ApiError {
  constructor(roomId: string, publisher: string) {
    super(409, "conflict", `room ${roomId} already has a publisher (session ${publisher})`);
    this.name = "RoomBusyError";
  }
}

/** The room is at its listener cap. */
export class RoomFullError extends ApiError {
  constructor(roomId: string, max: number) {
    super(429, "limit_exceeded", `room ${roomId} is full (${max} listeners)`, { "retry-after": "5" });
    this.name = "RoomFullError";
  }
}

/** The room (or listener) does not exist on this origin, or is closed. */
export class RoomNotFoundError extends ApiError {
  constructor(what: string) {
    super(404, "not_found", `${what} not found`);
    this.name = "RoomNotFoundError";
  }
}
