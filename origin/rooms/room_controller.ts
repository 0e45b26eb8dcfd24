/**
 * The room's one controller (the fan-out design): it owns the mapping listener → source and computes, once per
 * 10 ms tick, the frame each listener gets. Listeners never decide what to send; they receive frames.
 *
 * Every change — a listener's `select`, the room default, idle/active, the idle track — is a command queued
 * with the frame index that was next to be produced when it was requested (`requestedFrame`). The tick applies
 * all queued commands before it produces that frame, so a switch always happens on a 10 ms frame boundary,
 * and the frame it is requested for already starts the crossfade: `appliedFrame === requestedFrame`.
 * The crossfade is equal-power over `crossfadeMs` (whole frames); the frame after the fade is the new source
 * alone. A second switch during a fade starts a new fade from the source the first one was heading to.
 *
 * Per tick: the live sources (`speaker`: the publisher's mic; `voice`: the publisher session's synthesized
 * outbound audio) are taken from their jitter buffers every tick (so they stay real-time whether or not anyone
 * hears them); the backing track only on ticks where someone hears it (it pauses otherwise). Listeners hearing
 * the same thing get the same buffer; a crossfade is mixed once per (from, to, step) and shared, so a room-wide
 * switch (idle) costs one mix, not one per listener.
 *
 * Listeners of a `shared` room are PacketSinks (forward_listener.ts): each program they play is encoded once
 * per 20 ms (program_encoder.ts) and the packet handed to all of them. Their switches are decided only on
 * packet boundaries (even frames; a request lands at most one frame later) and cut without a fade, since an
 * encoded packet cannot be mixed per listener. Half of them (alternating as they join) get each packet on the
 * tick after it completed, so a tick sends to half the listeners, not all of them at once: the clock's other
 * work (the publisher's own paced audio) waits for a shorter burst.
 *
 * One tick drives all listeners of the room, from the process-wide drift-corrected FrameClock
 * (origin/session/outbound_audio.ts) unless another clock is given.
 */
import { log as rootLog, type Logger } from "../../lib/log.ts";
import { registry } from "../../lib/metrics.ts";
import { FRAME_MS, FRAME_SAMPLES, frameClock } from "../session/outbound_audio.ts";
import type { BackingTrack } from "./backing_track.ts";
import { crossfadeInto, fadeGains } from "./frame_math.ts";
import { PACKET_FRAMES, ProgramEncoder } from "./program_encoder.ts";
import type {
  FrameSink,
  IdleSource,
  ListenerSource,
  PacketSink,
  ProgramSource,
  RoomDefaultSource,
  SwitchReason,
  SwitchRecord,
  TickClock,
} from "./room_types.ts";
import { SourceQueue } from "./source_queue.ts";

const switchesTotal = registry.counter("parley_room_switches_total", "Listener source switches, by reason");
const tickSeconds = registry.histogram(
  "parley_room_tick_seconds",
  "Time one room tick takes (sources, crossfades, handing every listener its frame)",
  [0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05],
);
const sinkErrors = registry.counter("parley_room_sink_errors_total", "Listener frame deliveries that threw");
const sourceDropped = registry.counter(
  "parley_room_source_dropped_frames_total",
  "Publisher frames a room's jitter buffer dropped (more arrived at once than it holds), by source",
);
const sourceUnderruns = registry.counter(
  "parley_room_source_underruns_total",
  "Times a room's live source ran dry while playing (listeners hear silence until it refills), by source",
);

interface ListenerState {
  readonly id: string;
  readonly sink: FrameSink | PacketSink;
  /** The sink takes encoded packets (switched on packet boundaries only). */
  readonly packets: boolean;
  /** Packet listeners: 0 gets a packet on the tick it completes, 1 on the next tick (halves the send burst). */
  readonly slice: number;
  selected: ListenerSource;
  /** What the listener hears (the fade target while fading); null before its first frame. */
  playing: ProgramSource | null;
  fade: { from: ProgramSource; step: number } | null;
  /** Reason of the change that the next switch of this listener will be attributed to. */
  pendingReason: SwitchReason | null;
  requestedFrame: number;
}

type Command =
  | { kind: "select"; id: string; source: ListenerSource; frame: number }
  | { kind: "default"; source: RoomDefaultSource; frame: number }
  | { kind: "idle"; idle: boolean; frame: number }
  | { kind: "idleSource"; source: IdleSource; frame: number }
  | { kind: "track"; track: BackingTrack | null; frame: number };

export interface RoomControllerOptions {
  roomId: string;
  defaultSource?: RoomDefaultSource;
  idleSource?: IdleSource;
  track?: BackingTrack | null;
  /** Start idle (no publisher yet). Default true. */
  idle?: boolean;
  /** 10 or 20 (rounded to whole frames, at least one). Default 10. */
  crossfadeMs?: number;
  clock?: TickClock;
  log?: Logger;
  /** Called after each tick's frames were handed out, with the switches made on that tick. */
  onSwitches?: (switches: SwitchRecord[]) => void;
  /**
   * Called each tick with the live sources' frames for frame `frame` (null: the jitter buffer had none, the
   * listeners hear silence), before that frame's commands are applied: a command queued from here (speech
   * ending idle) already applies to this frame.
   */
  onSourceFrames?: (frame: number, speaker: Int16Array | null, voice: Int16Array | null) => void;
}

const SILENCE = new Int16Array(FRAME_SAMPLES);

export class RoomController {
  readonly roomId: string;
  readonly fadeFrames: number;
  readonly speaker = new SourceQueue();
  readonly voice = new SourceQueue();
  readonly #clock: TickClock;
  readonly #log: Logger;
  readonly #onSwitches: ((s: SwitchRecord[]) => void) | undefined;
  readonly #onSourceFrames: RoomControllerOptions["onSourceFrames"];
  readonly #listeners = new Map<string, ListenerState>();
  readonly #gains: { out: Float32Array; in: Float32Array };
  readonly #tick = () => this.tick();
  #commands: Command[] = [];
  #default: RoomDefaultSource;
  #idleSource: IdleSource;
  #track: BackingTrack | null;
  #idle: boolean;
  #frame = 0;
  #running = false;
  #closed = false;
  /** Queue counters already counted in the metrics. */
  #seen = { speakerDropped: 0, voiceDropped: 0, speakerUnderruns: 0, voiceUnderruns: 0 };
  /** One encoder per program heard by packet listeners (freed on the first packet boundary nobody hears it). */
  readonly #encoders = new Map<ProgramSource, ProgramEncoder>();
  /** Packet listeners by the program they play, rebuilt every tick. */
  readonly #byProgram = new Map<ProgramSource, PacketSink[]>();
  /** Packets for slice-1 listeners, sent on the tick after their packet completed. */
  #deferred: Array<{ sink: PacketSink; packet: Uint8Array }> = [];
  #nextSlice = 0;
  readonly #slice1 = new Set<PacketSink>();
  /** Crossfade buffers, reused tick after tick. */
  #mixPool: Int16Array[] = [];
  /** Switches made so far (a listener's first frame is not one). */
  switches = 0;
  /** Ticks run, and the slowest one (ms). */
  ticks = 0;
  maxTickMs = 0;

  constructor(opts: RoomControllerOptions) {
    this.roomId = opts.roomId;
    this.#default = opts.defaultSource ?? "speaker";
    this.#idleSource = opts.idleSource ?? "silence";
    this.#track = opts.track ?? null;
    this.#idle = opts.idle ?? true;
    this.fadeFrames = Math.max(1, Math.round((opts.crossfadeMs ?? 10) / FRAME_MS));
    this.#gains = fadeGains(this.fadeFrames * FRAME_SAMPLES);
    this.#clock = opts.clock ?? frameClock;
    this.#log = (opts.log ?? rootLog).child({ component: "room_controller", room_id: opts.roomId });
    this.#onSwitches = opts.onSwitches;
    this.#onSourceFrames = opts.onSourceFrames;
  }

  /** Index of the next frame to be produced (frame k covers [k·10 ms, (k+1)·10 ms) of room time). */
  get frameIndex(): number {
    return this.#frame;
  }
  get size(): number {
    return this.#listeners.size;
  }
  get idle(): boolean {
    return this.#idle;
  }
  get closed(): boolean {
    return this.#closed;
  }
  get defaultSource(): RoomDefaultSource {
    return this.#default;
  }

  /** What a listener hears now (null: unknown listener or no frame yet). */
  playing(id: string): ProgramSource | null {
    return this.#listeners.get(id)?.playing ?? null;
  }
  selected(id: string): ListenerSource | null {
    return this.#listeners.get(id)?.selected ?? null;
  }

  /** Subscribe to the clock. Idempotent. */
  start(): void {
    if (this.#running || this.#closed) return;
    this.#running = true;
    this.#clock.add(this.#tick);
  }

  /** A new listener gets frames from the next tick on (its first frame is its source, no fade). */
  addListener(id: string, sink: FrameSink | PacketSink, selected: ListenerSource): void {
    if (this.#closed) throw new Error(`room ${this.roomId} controller is closed`);
    if (this.#listeners.has(id)) throw new Error(`listener ${id} is already in room ${this.roomId}`);
    this.#listeners.set(id, {
      id,
      sink,
      packets: "pushPacket" in sink,
      slice: "pushPacket" in sink ? (this.#nextSlice ^= 1) : 0,
      selected,
      playing: null,
      fade: null,
      pendingReason: "join",
      requestedFrame: this.#frame,
    });
  }

  /** The listener gets no further frame (takes effect at once: its sink is about to be released). */
  removeListener(id: string): boolean {
    const st = this.#listeners.get(id);
    if (st?.packets) this.#deferred = this.#deferred.filter((d) => d.sink !== st.sink);
    return this.#listeners.delete(id);
  }

  has(id: string): boolean {
    return this.#listeners.has(id);
  }

  select(id: string, source: ListenerSource): void {
    this.#queue({ kind: "select", id, source, frame: this.#frame });
  }
  setDefaultSource(source: RoomDefaultSource): void {
    this.#queue({ kind: "default", source, frame: this.#frame });
  }
  setIdle(idle: boolean): void {
    this.#queue({ kind: "idle", idle, frame: this.#frame });
  }
  setIdleSource(source: IdleSource): void {
    this.#queue({ kind: "idleSource", source, frame: this.#frame });
  }
  setTrack(track: BackingTrack | null): void {
    this.#queue({ kind: "track", track, frame: this.#frame });
  }

  #queue(c: Command): void {
    if (!this.#closed) this.#commands.push(c);
  }

  #resolve(selected: ListenerSource): ProgramSource {
    if (this.#idle) return this.#idleSource === "track" && this.#track ? "track" : "silence";
    const s = selected === "room" ? this.#default : selected;
    return s === "track" && !this.#track ? "silence" : s;
  }

  #applyCommands(): void {
    const cmds = this.#commands;
    if (cmds.length === 0) return;
    this.#commands = [];
    const mark = (st: ListenerState, reason: SwitchReason, frame: number) => {
      st.pendingReason = reason;
      st.requestedFrame = frame;
    };
    for (const c of cmds) {
      switch (c.kind) {
        case "select": {
          const st = this.#listeners.get(c.id);
          if (!st) break;
          st.selected = c.source;
          mark(st, "request", c.frame);
          break;
        }
        case "default":
          this.#default = c.source;
          for (const st of this.#listeners.values()) if (st.selected === "room") mark(st, "default", c.frame);
          break;
        case "idle":
          if (c.idle === this.#idle) break;
          this.#idle = c.idle;
          for (const st of this.#listeners.values()) mark(st, c.idle ? "idle" : "active", c.frame);
          break;
        case "idleSource":
          this.#idleSource = c.source;
          for (const st of this.#listeners.values()) mark(st, "idle", c.frame);
          break;
        case "track":
          this.#track = c.track;
          for (const st of this.#listeners.values()) mark(st, "default", c.frame);
          break;
      }
    }
  }

  /** Produce frame `frameIndex` for every listener. Called by the clock; public for manual clocks in tests. */
  tick(): void {
    if (this.#closed) return;
    const t0 = performance.now();
    const frame = this.#frame;
    const speakerFrame = this.speaker.pop();
    const voiceFrame = this.voice.pop();
    this.#countQueues();
    if (this.#onSourceFrames) {
      try {
        this.#onSourceFrames(frame, speakerFrame, voiceFrame);
      } catch (err) {
        this.#log.warn("source frame callback failed", { err });
      }
    }
    this.#applyCommands();
    const made: SwitchRecord[] = [];
    let needTrack = false;
    const packetStart = frame % PACKET_FRAMES === 0;
    for (const list of this.#byProgram.values()) list.length = 0;
    const slice1 = this.#slice1;
    slice1.clear();
    for (const st of this.#listeners.values()) {
      if (st.packets) {
        if (packetStart) {
          const target = this.#resolve(st.selected);
          if (st.playing === null) {
            st.playing = target;
            made.push(this.#record(st, "join", target, target, frame, t0));
          } else if (target !== st.playing) {
            made.push(this.#record(st, st.pendingReason ?? "request", st.playing, target, frame, t0));
            st.playing = target;
          }
          st.pendingReason = null;
        }
        if (st.playing === null) continue;
        if (st.playing === "track") needTrack = true;
        let list = this.#byProgram.get(st.playing);
        if (!list) this.#byProgram.set(st.playing, list = []);
        list.push(st.sink as PacketSink);
        if (st.slice === 1) slice1.add(st.sink as PacketSink);
        continue;
      }
      const target = this.#resolve(st.selected);
      if (st.playing === null) {
        st.playing = target;
        made.push(this.#record(st, "join", target, target, frame, t0));
      } else if (target !== st.playing) {
        const from = st.playing;
        st.fade = { from, step: 0 };
        st.playing = target;
        made.push(this.#record(st, st.pendingReason ?? "request", from, target, frame, t0));
      }
      st.pendingReason = null;
      if (st.playing === "track" || st.fade?.from === "track") needTrack = true;
    }
    const speaker = speakerFrame ?? SILENCE;
    const voice = voiceFrame ?? SILENCE;
    const track = needTrack && this.#track ? this.#track.next() : SILENCE;
    const pick = (s: ProgramSource) =>
      s === "speaker" ? speaker : s === "voice" ? voice : s === "track" ? track : SILENCE;
    let mixes: Map<string, Int16Array> | undefined;
    let pooled = 0;
    // Last tick's packets for slice-1 listeners first (removeListener drops a removed listener's).
    const deferred = this.#deferred;
    this.#deferred = [];
    const at = this.#clock.frameAt;
    for (const { sink, packet } of deferred) this.#deliver(sink, packet, at);
    for (const [program, sinks] of this.#byProgram) {
      if (sinks.length === 0) {
        // Nobody hears this program any more: free its encoder (a later listener gets a fresh one).
        if (packetStart) this.#closeEncoder(program);
        continue;
      }
      let packet: Uint8Array | null;
      try {
        // A refused encoder (EncoderCapacityError: opusscript's heap is full) is retried on the next tick.
        let enc = this.#encoders.get(program);
        if (!enc) this.#encoders.set(program, enc = new ProgramEncoder(program));
        if (packetStart) enc.resetPacket();
        packet = enc.push(pick(program));
      } catch (err) {
        sinkErrors.inc();
        this.#log.warn("program encode failed", { program, err });
        continue;
      }
      if (!packet) continue;
      for (const sink of sinks) {
        if (slice1.has(sink)) this.#deferred.push({ sink, packet });
        else this.#deliver(sink, packet, at);
      }
    }
    for (const st of this.#listeners.values()) {
      if (st.packets) continue;
      let out: Int16Array;
      const fade = st.fade;
      if (fade) {
        const key = `${fade.from}>${st.playing}#${fade.step}`;
        mixes ??= new Map();
        let mixed = mixes.get(key);
        if (!mixed) {
          const buf = this.#mixPool[pooled] ??= new Int16Array(FRAME_SAMPLES);
          pooled++;
          mixed = crossfadeInto(buf, pick(fade.from), pick(st.playing!), this.#gains, fade.step);
          mixes.set(key, mixed);
        }
        out = mixed;
        if (++fade.step >= this.fadeFrames) st.fade = null;
      } else out = pick(st.playing!);
      try {
        (st.sink as FrameSink).pushFrame(out);
      } catch (err) {
        sinkErrors.inc();
        this.#log.warn("listener frame delivery failed", { listener_id: st.id, err });
      }
    }
    this.#frame++;
    this.ticks++;
    const spent = performance.now() - t0;
    if (spent > this.maxTickMs) this.maxTickMs = spent;
    tickSeconds.observe(spent / 1000);
    if (made.length) {
      for (const m of made) if (m.reason !== "join") this.switches++;
      try {
        this.#onSwitches?.(made);
      } catch (err) {
        this.#log.warn("switch callback failed", { err });
      }
    }
  }

  #countQueues(): void {
    const seen = this.#seen;
    const count = (q: SourceQueue, source: "speaker" | "voice") => {
      const dropped = Math.floor(q.droppedSamples / FRAME_SAMPLES);
      const key = `${source}Dropped` as const, ukey = `${source}Underruns` as const;
      if (dropped > seen[key]) sourceDropped.inc({ source }, dropped - seen[key]);
      if (q.underruns > seen[ukey]) sourceUnderruns.inc({ source }, q.underruns - seen[ukey]);
      seen[key] = dropped;
      seen[ukey] = q.underruns;
    };
    count(this.speaker, "speaker");
    count(this.voice, "voice");
  }

  #record(
    st: ListenerState,
    reason: SwitchReason,
    from: ProgramSource,
    to: ProgramSource,
    frame: number,
    atMs: number,
  ): SwitchRecord {
    if (reason !== "join") switchesTotal.inc({ reason });
    return {
      listenerId: st.id,
      from,
      to,
      requestedFrame: st.requestedFrame,
      appliedFrame: frame,
      atMs,
      reason,
    };
  }

  /** Unsubscribe from the clock, forget listeners and buffered audio. Idempotent; listeners are the room's. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#running) this.#clock.remove(this.#tick);
    this.#running = false;
    this.#listeners.clear();
    this.#commands = [];
    this.speaker.clear();
    this.voice.clear();
    this.#mixPool = [];
    this.#track = null;
    for (const enc of this.#encoders.values()) enc.close();
    this.#encoders.clear();
    this.#byProgram.clear();
    this.#deferred = [];
    this.#slice1.clear();
  }

  #deliver(sink: PacketSink, packet: Uint8Array, at: number | undefined): void {
    try {
      sink.pushPacket(packet, at);
    } catch (err) {
      sinkErrors.inc();
      this.#log.warn("listener packet delivery failed", { err });
    }
  }

  #closeEncoder(program: ProgramSource): void {
    this.#encoders.get(program)?.close();
    this.#encoders.delete(program);
  }

  /** Program encoders open (shared rooms; leak checks). */
  get encoders(): number {
    return this.#encoders.size;
  }
}
