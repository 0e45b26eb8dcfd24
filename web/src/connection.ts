/// <reference lib="dom" />
/**
 * One live session from the browser side: RTCPeerConnection with the microphone track, the `events` and
 * `control` data channels (created here, before the offer, as the protocol requires), non-trickle offer via
 * POST /v1/sessions (JSON), events de-duplicated by `seq`, and automatic resume after a network blip: a new
 * peer connection POSTed with `resume: {session_id, last_seq}`; the server replays what we missed.
 */
import type { ByeEvent, ControlMessage, ServerEvent, SessionMode } from "../../protocol/session_messages.ts";
import { ApiError, getJson, request } from "./api.ts";

export type ConnState = "idle" | "connecting" | "connected" | "reconnecting" | "closed" | "failed";

export interface ConnectionCallbacks {
  event(e: ServerEvent): void;
  state(s: ConnState, detail?: string): void;
  remoteStream(stream: MediaStream): void;
}

export interface StartOptions {
  mode: SessionMode;
  voice?: string;
  barge_in?: boolean;
}

interface CreateResponse {
  id: string;
  sdp: string;
  location: string;
}

/** Wait until ICE gathering is complete (non-trickle: the offer carries every candidate), at most `ms`. */
function gathered(pc: RTCPeerConnection, ms = 3000): Promise<void> {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    };
    const check = () => {
      if (pc.iceGatheringState === "complete") done();
    };
    const t = setTimeout(done, ms);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class LiveConnection {
  sessionId: string | null = null;
  lastSeq = 0;
  pc: RTCPeerConnection | null = null;
  resumes = 0;
  /** Mirrors the page's mute button; re-sent after a resume. */
  muted = false;
  #control: RTCDataChannel | null = null;
  #state: ConnState = "idle";
  #ended = false;
  #blipTimer: ReturnType<typeof setTimeout> | undefined;
  #reconnecting: Promise<void> | null = null;
  #byeWaiters: Array<() => void> = [];
  /** Bumped per peer connection so callbacks of a replaced one are ignored. */
  #generation = 0;

  constructor(
    private readonly mic: MediaStream,
    private readonly options: StartOptions,
    private readonly cb: ConnectionCallbacks,
  ) {}

  get state(): ConnState {
    return this.#state;
  }

  #set(s: ConnState, detail?: string): void {
    this.#state = s;
    this.cb.state(s, detail);
  }

  async start(): Promise<void> {
    this.#set("connecting");
    try {
      await this.#connect(false);
    } catch (e) {
      this.#ended = true;
      this.#set("failed", describeError(e));
      this.#teardown();
      throw e;
    }
  }

  /** Build a peer connection, offer, POST, apply the answer. The old peer (if any) is dropped afterwards. */
  async #connect(resume: boolean): Promise<void> {
    const gen = ++this.#generation;
    const old = this.pc;
    const pc = new RTCPeerConnection({ iceServers: [] });
    const events = pc.createDataChannel("events");
    const control = pc.createDataChannel("control");
    for (const track of this.mic.getAudioTracks()) pc.addTrack(track, this.mic);
    pc.ontrack = (ev) => {
      if (gen !== this.#generation) return;
      this.cb.remoteStream(ev.streams[0] ?? new MediaStream([ev.track]));
    };
    events.onmessage = (ev) => {
      if (gen !== this.#generation) return;
      let e: ServerEvent;
      try {
        e = JSON.parse(String(ev.data)) as ServerEvent;
      } catch {
        return;
      }
      if (typeof e.seq === "number") {
        if (e.seq <= this.lastSeq) return; // already seen (replay overlap)
        this.lastSeq = e.seq;
      }
      if (e.type === "bye") this.#onBye(e);
      this.cb.event(e);
    };
    // "connected" means media AND both data channels are up: only then can `say`/`mute` be sent.
    const ready = () => {
      if (gen !== this.#generation || this.#ended) return;
      if (
        pc.connectionState !== "connected" || events.readyState !== "open" || control.readyState !== "open"
      ) {
        return;
      }
      clearTimeout(this.#blipTimer);
      // A resumed session is a new peer on the server: tell it again that we are muted.
      if (this.muted) control.send(JSON.stringify({ type: "mute", muted: true } satisfies ControlMessage));
      this.#set("connected");
    };
    events.onopen = ready;
    control.onopen = ready;
    events.onclose = () => {
      // The channel closing without a bye is a lost path (or the server went away): try to resume.
      if (gen !== this.#generation) return;
      if (this.#ended) { for (const wake of this.#byeWaiters.splice(0)) wake(); }
      else this.#scheduleResume(0);
    };
    pc.onconnectionstatechange = () => {
      if (gen !== this.#generation || this.#ended) return;
      const s = pc.connectionState;
      if (s === "connected") {
        ready();
      } else if (s === "disconnected") {
        // Often transient: give ICE a moment to recover by itself before re-offering.
        this.#set("reconnecting", "network interrupted");
        this.#scheduleResume(2500);
      } else if (s === "failed") {
        this.#scheduleResume(0);
      }
    };
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const body: Record<string, unknown> = {
      sdp: pc.localDescription!.sdp,
      options: {
        mode: this.options.mode,
        ...(this.options.voice ? { voice: this.options.voice } : {}),
        ...(this.options.barge_in === undefined ? {} : { barge_in: this.options.barge_in }),
      },
    };
    if (resume && this.sessionId) body.resume = { session_id: this.sessionId, last_seq: this.lastSeq };
    let res: CreateResponse;
    try {
      res = await (await request("/v1/sessions", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      })).json() as CreateResponse;
    } catch (e) {
      pc.close();
      if (gen === this.#generation) this.#generation++;
      throw e;
    }
    if (this.#ended) {
      // Stopped while (re)connecting: drop the peer; a session created just now has no transcript yet, so
      // DELETE ends it without erasing anything (a resumed one ends when its channels close).
      pc.close();
      if (!resume) await request(`/v1/sessions/${res.id}`, { method: "DELETE" }).catch(() => {});
      return;
    }
    this.sessionId = res.id;
    this.pc = pc;
    this.#control = control;
    await pc.setRemoteDescription({ type: "answer", sdp: res.sdp });
    // The server detached the old peer before answering; closing ours now cannot end the session.
    if (old && old !== pc) old.close();
  }

  #scheduleResume(delayMs: number): void {
    clearTimeout(this.#blipTimer);
    this.#blipTimer = setTimeout(() => {
      if (this.#ended || this.pc?.connectionState === "connected" && delayMs > 0) return;
      void this.reconnect();
    }, delayMs);
  }

  /** Resume the same session on a new peer connection (also used by the page's debug hook to simulate a blip). */
  reconnect(): Promise<void> {
    if (this.#reconnecting || this.#ended || !this.sessionId) return this.#reconnecting ?? Promise.resolve();
    this.#set("reconnecting", "network interrupted, resuming");
    this.#reconnecting = (async () => {
      const delays = [0, 500, 1000, 2000, 3000, 4000, 5000];
      let last: unknown;
      for (const d of delays) {
        if (this.#ended) return;
        await sleep(d);
        try {
          await this.#connect(true);
          this.resumes++;
          return;
        } catch (e) {
          last = e;
          // The session is gone (closed, or its origin died): resuming cannot work.
          if (e instanceof ApiError && e.status !== 503 && e.status !== 429 && e.status < 500) break;
        }
      }
      this.#ended = true;
      this.#teardown();
      this.#set("failed", `Could not resume the session: ${describeError(last)}`);
    })().finally(() => {
      this.#reconnecting = null;
    });
    return this.#reconnecting;
  }

  #onBye(_e: ByeEvent): void {
    this.#ended = true;
    for (const wake of this.#byeWaiters.splice(0)) wake();
    clearTimeout(this.#blipTimer);
    // Let the server close the transport; drop ours shortly after.
    setTimeout(() => this.#teardown(), 500);
    this.#set("closed");
  }

  send(msg: ControlMessage): boolean {
    if (!this.#control || this.#control.readyState !== "open") return false;
    this.#control.send(JSON.stringify(msg));
    return true;
  }

  /** End the session: `bye` on the control channel, DELETE as a backstop, close the peer. */
  /**
   * End the session: `bye` on the control channel and wait (briefly) for the server's `bye`. Only when that
   * cannot be confirmed, DELETE it, and only while it is still open: a DELETE on an ended session means
   * "erase its transcript" (right to erasure), which Stop must never do.
   */
  async stop(): Promise<void> {
    if (this.#state === "closed" || this.#state === "failed") return;
    this.#ended = true;
    clearTimeout(this.#blipTimer);
    let confirmed = false;
    if (this.send({ type: "bye" })) {
      confirmed = await new Promise<boolean>((resolve) => {
        const t = setTimeout(() => resolve(false), 3000);
        this.#byeWaiters.push(() => {
          clearTimeout(t);
          resolve(true);
        });
      });
    }
    if (!confirmed && this.sessionId) {
      const row = await getJson<{ state: string }>(`/v1/sessions/${this.sessionId}`).catch(() => null);
      if (row && row.state !== "closed") {
        await request(`/v1/sessions/${this.sessionId}`, { method: "DELETE" }).catch(() => {});
      }
    }
    this.#teardown();
    this.#set("closed");
  }

  #teardown(): void {
    this.#generation++;
    this.pc?.close();
    this.pc = null;
    this.#control = null;
  }
}

export function describeError(e: unknown): string {
  if (e instanceof ApiError) {
    switch (e.code) {
      case "no_origin_available":
        return "No speech server is available right now. Try again in a few seconds.";
      case "limit_exceeded":
      case "rate_limited":
        return `Too many sessions or requests: ${e.message}`;
      case "unauthorized":
        return "Your sign-in expired. Sign in again.";
      case "forbidden":
        return `Not allowed: ${e.message}`;
      default:
        return `${e.message} (${e.code})`;
    }
  }
  if (e instanceof DOMException) {
    if (e.name === "NotAllowedError") {
      return "Microphone access was denied. Allow it in the browser and retry.";
    }
    if (e.name === "NotFoundError") return "No microphone was found.";
    if (e.name === "NotReadableError") return "The microphone is in use by another application.";
    return `${e.name}: ${e.message}`;
  }
  if (e instanceof TypeError) return `Network error: ${e.message}`;
  return e instanceof Error ? e.message : String(e);
}

/** A sentence for every close reason the protocol defines. */
export function byeMessage(e: ByeEvent): string {
  const base: Record<ByeEvent["reason"], string> = {
    client_hangup: "Session ended.",
    remote_hangup: "The caller hung up.",
    ice_failed:
      "The media connection could not be established (ICE failed). UDP may be blocked on this network.",
    ice_disconnected_timeout: "The network connection dropped and did not come back in time. Start again.",
    media_timeout:
      "No sound from your microphone for too long, so the session was ended. Check the microphone, or use Mute to pause.",
    origin_shutdown: "The speech server is restarting. Start again in a moment.",
    origin_lost: "The speech server handling this session went away. Start a new session.",
    admin: "An administrator ended this session.",
    error: "The session ended because of a server error.",
    database_unavailable: "The service could not store this session's results for too long. Start again.",
    completed: "The file transcription finished.",
  };
  const text = base[e.reason] ?? `Session ended (${e.reason}).`;
  return e.message && e.reason !== "client_hangup" ? `${text} (${e.message})` : text;
}
