/// <reference lib="dom" />
/** The Live view: start/stop a session, captions, mic meter, returned voice with telop, say, mute. */
import type { ServerEvent, SessionMode, TranscriptEvent } from "../../protocol/session_messages.ts";
import { $, announce, clear, clock, h, mmss } from "./dom.ts";
import { byeMessage, type ConnState, describeError, LiveConnection } from "./connection.ts";
import { SessionClock, TelopView } from "./telop.ts";
import { type EngineDescriptor, type EnginesResponse, humanSpeechRoute } from "../../protocol/engines.ts";
import { getJson } from "./api.ts";

/**
 * The line above the Live controls: which recognizer new sessions get, what it understands, and how to get
 * the other one (from `GET /v1/engines`).
 */
export function recognizerLine(res: EnginesResponse): string {
  const engines: EngineDescriptor[] = res.origins[0]?.engines ?? [];
  const asr = engines.filter((e) => e.kind === "asr");
  const active = asr.find((e) => e.active);
  if (!active) return "No origin is serving sessions right now.";
  const line = `Speech recognition: ${active.name}, understands ${active.understands}.`;
  if (active.understands !== "synthetic English only") return line;
  const human = humanSpeechRoute(asr);
  return human ? `${line} For human speech: ${human.how_to_enable}.` : line;
}

const STATE_TEXT: Record<ConnState, string> = {
  idle: "idle",
  connecting: "connecting…",
  connected: "connected",
  reconnecting: "reconnecting…",
  closed: "closed",
  failed: "failed",
};

export class LiveView {
  conn: LiveConnection | null = null;
  mic: MediaStream | null = null;
  readonly clock = new SessionClock();
  readonly telop: TelopView;
  #audioCtx: AudioContext | null = null;
  #meterTimer: ReturnType<typeof setInterval> | undefined;
  #statsTimer: ReturnType<typeof setInterval> | undefined;
  #muted = false;
  #partialSegment: number | null = null;
  /** The last 100 server events (debugging from the console; the e2e test prints them on failure). */
  readonly recent: ServerEvent[] = [];
  /** Counters the e2e test (and curious users, via window.parley) can read. */
  readonly counts = {
    partial: 0,
    confirmed: 0,
    telop: 0,
    events: 0,
    /** performance.now() of the first partial / confirmed caption of the current session. */
    firstPartialAt: 0,
    firstConfirmedAt: 0,
    /** Confirmed lines whose segment had shown a partial first. */
    partialThenConfirmed: 0,
    /** Loudest mic level the meter showed (0..1). */
    maxLevel: 0,
  };

  readonly form = $<HTMLFormElement>("live-form");
  readonly startBtn = $<HTMLButtonElement>("start");
  readonly stopBtn = $<HTMLButtonElement>("stop");
  readonly muteBtn = $<HTMLButtonElement>("mute");
  readonly modeSel = $<HTMLSelectElement>("mode");
  readonly voiceIn = $<HTMLInputElement>("voice");
  readonly aec = $<HTMLInputElement>("aec");
  readonly bargeIn = $<HTMLInputElement>("barge-in");
  readonly meter = $<HTMLMeterElement>("mic-level");
  readonly stateEl = $("conn-state");
  readonly sessionEl = $("session-id");
  readonly message = $("live-message");
  readonly confirmed = $<HTMLOListElement>("confirmed");
  readonly partial = $("partial");
  readonly audio = $<HTMLAudioElement>("remote-audio");
  readonly sayForm = $<HTMLFormElement>("say-form");
  readonly sayText = $<HTMLInputElement>("say-text");
  readonly saySend = $<HTMLButtonElement>("say-send");
  readonly recognizer = $("recognizer");

  /** Shows which recognizer is active (called when the Live view is shown). */
  async refreshEngines(): Promise<void> {
    try {
      this.recognizer.textContent = recognizerLine(await getJson<EnginesResponse>("/v1/engines"));
    } catch {
      this.recognizer.textContent = "";
    }
  }

  constructor() {
    this.telop = new TelopView($("telop"), $("mouth"), this.clock, {
      onsets: this.voiceOnsets,
      loud: () => this.#voiceLoud,
    });
    this.form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      void this.start();
    });
    this.stopBtn.addEventListener("click", () => void this.stop());
    this.muteBtn.addEventListener("click", () => this.setMuted(!this.#muted));
    this.sayForm.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.say();
    });
  }

  #showMessage(text: string, kind: "info" | "error" = "info"): void {
    this.message.textContent = text;
    this.message.dataset.kind = kind;
  }

  #running(on: boolean): void {
    this.startBtn.disabled = on;
    this.stopBtn.disabled = !on;
    this.muteBtn.disabled = !on;
    this.modeSel.disabled = on;
    this.aec.disabled = on;
    this.bargeIn.disabled = on;
    this.sayText.disabled = !on;
    this.saySend.disabled = !on;
  }

  async start(): Promise<void> {
    if (this.conn) return;
    this.#showMessage("");
    this.#running(true);
    this.#setState("connecting");
    clear(this.confirmed);
    this.#clearPartial();
    this.clock.reset();
    this.telop.reset();
    this.voiceOnsets.length = 0;
    this.counts.partial =
      this.counts.confirmed =
      this.counts.telop =
      this.counts.events =
        0;
    try {
      const echoCancellation = this.aec.checked;
      this.mic = await navigator.mediaDevices.getUserMedia({
        // Without echo cancellation (headphones): the raw microphone, no noise suppression or gain control.
        audio: {
          echoCancellation,
          noiseSuppression: echoCancellation,
          autoGainControl: echoCancellation,
          channelCount: 1,
        },
        video: false,
      });
      this.#startMeter(this.mic);
      const mode = this.modeSel.value as SessionMode;
      const voice = this.voiceIn.value.trim() || undefined;
      this.conn = new LiveConnection(this.mic, { mode, voice, barge_in: this.bargeIn.checked }, {
        event: (e) => this.#onEvent(e),
        state: (s, detail) => this.#onConnState(s, detail),
        remoteStream: (stream) => {
          this.audio.srcObject = stream;
          this.#watchVoice(stream);
          this.audio.play().catch(() => {
            this.#showMessage("Click anywhere to hear the voice (the browser blocked autoplay).");
            document.addEventListener("click", () => void this.audio.play(), { once: true });
          });
        },
      });
      this.setMuted(false);
      const conn = this.conn;
      await conn.start();
      if (this.conn !== conn) return; // stopped while connecting
      this.sessionEl.textContent = conn.sessionId ?? "";
      this.#statsTimer = setInterval(() => void this.#pollStats(), 1000);
    } catch (e) {
      this.#showMessage(describeError(e), "error");
      this.#cleanup();
      this.#setState("failed");
    }
  }

  async stop(): Promise<void> {
    const c = this.conn;
    if (!c) return;
    await c.stop();
    this.#cleanup();
  }

  setMuted(muted: boolean): void {
    this.#muted = muted;
    for (const t of this.mic?.getAudioTracks() ?? []) t.enabled = !muted;
    this.muteBtn.setAttribute("aria-pressed", String(muted));
    this.muteBtn.textContent = muted ? "Unmute" : "Mute";
    if (this.conn) {
      this.conn.muted = muted;
      this.conn.send({ type: "mute", muted });
    }
  }

  say(): void {
    const text = this.sayText.value.trim();
    if (!text || !this.conn) return;
    const voice = this.voiceIn.value.trim() || undefined;
    if (this.conn.send({ type: "say", text, ...(voice ? { voice } : {}) })) {
      this.sayText.value = "";
    } else {
      this.#showMessage("Not connected: the text was not sent.", "error");
    }
  }

  #cleanup(): void {
    clearInterval(this.#meterTimer);
    clearInterval(this.#statsTimer);
    clearInterval(this.#voiceTimer);
    this.meter.value = 0;
    for (const t of this.mic?.getTracks() ?? []) t.stop();
    this.mic = null;
    void this.#audioCtx?.close().catch(() => {});
    this.#audioCtx = null;
    this.conn = null;
    this.#running(false);
    this.#muted = false;
    this.muteBtn.setAttribute("aria-pressed", "false");
    this.muteBtn.textContent = "Mute";
  }

  #setState(s: ConnState, detail?: string): void {
    this.stateEl.textContent = STATE_TEXT[s] + (detail && s === "reconnecting" ? ` (${detail})` : "");
    this.stateEl.dataset.state = s;
  }

  #onConnState(s: ConnState, detail?: string): void {
    this.#setState(s, detail);
    if (s === "connected") {
      if (this.message.dataset.kind !== "error") this.#showMessage("");
      announce("Connected");
    } else if (s === "reconnecting") {
      this.#showMessage("Network interrupted: resuming the session…");
    } else if (s === "failed") {
      this.#showMessage(detail ?? "The session failed.", "error");
      this.#cleanup();
    } else if (s === "closed" && this.conn) {
      this.#cleanup();
    }
  }

  #onEvent(e: ServerEvent): void {
    const now = performance.now();
    this.counts.events++;
    this.recent.push(e);
    if (this.recent.length > 100) this.recent.shift();
    switch (e.type) {
      case "state":
        if (e.state === "active") {
          // Each server-side peer (the first, and each resume) announces itself active once; session time may
          // restart there, so the estimate restarts too (later events pull it back if the clock continued).
          this.clock.reset();
          this.clock.observe(0, now);
        }
        if (e.session_id) this.sessionEl.textContent = e.session_id;
        break;
      case "transcript":
        this.clock.observe(e.end_ms, now);
        this.#onTranscript(e);
        break;
      case "telop":
        this.clock.observe(e.playout_start_ms, now);
        this.counts.telop++;
        this.telopLog.push({
          receivedAt: now,
          playoutStartMs: e.playout_start_ms,
          startAt: this.clock.local(e.playout_start_ms),
        });
        if (this.telopLog.length > 50) this.telopLog.shift();
        this.telop.add(e);
        break;
      case "utterance":
        this.telop.utterance(e);
        break;
      case "bye":
        this.#showMessage(byeMessage(e), e.reason === "client_hangup" ? "info" : "error");
        break;
      case "error":
        this.#showMessage(`Server error: ${e.message} (${e.code})`, "error");
        break;
      case "pong":
        break;
    }
  }

  #clearPartial(): void {
    this.#partialSegment = null;
    this.partial.querySelector(".stable")!.textContent = "";
    this.partial.querySelector(".unstable")!.textContent = "";
    this.partial.hidden = true;
  }

  #onTranscript(e: TranscriptEvent): void {
    const text = e.alternatives[0]?.text ?? "";
    if (e.status === "partial") {
      this.counts.partial++;
      this.counts.firstPartialAt ||= performance.now();
      this.#partialSegment = e.segment_id;
      this.partial.hidden = false;
      this.partial.dataset.segment = String(e.segment_id);
      this.partial.querySelector(".stable")!.textContent = e.stable_text;
      this.partial.querySelector(".unstable")!.textContent = e.unstable_text;
      return;
    }
    this.counts.confirmed++;
    this.counts.firstConfirmedAt ||= performance.now();
    if (this.#partialSegment === e.segment_id) this.counts.partialThenConfirmed++;
    if (this.#partialSegment === e.segment_id || this.#partialSegment === null) this.#clearPartial();
    if (!text.trim()) return;
    const li = h(
      "li",
      { "data-segment": e.segment_id },
      h("time", { title: `session time ${mmss(e.start_ms)}–${mmss(e.end_ms)}` }, clock()),
      " ",
      h("span", { class: "text" }, text),
    );
    this.confirmed.append(li);
    li.scrollIntoView({ block: "nearest" });
  }

  /**
   * Onsets of the returned voice (local time at which its level rises after at least 300 ms of quiet), kept
   * to check that telops line up with what is heard (the e2e test compares them with `telop.starts`).
   */
  readonly voiceOnsets: number[] = [];
  /** When each telop arrived and when it was scheduled (local ms), for the same check. */
  readonly telopLog: Array<{ receivedAt: number; playoutStartMs: number; startAt: number }> = [];
  #voiceTimer: ReturnType<typeof setInterval> | undefined;
  #voiceLoud = false;

  #watchVoice(stream: MediaStream): void {
    clearInterval(this.#voiceTimer);
    if (!this.#audioCtx) return;
    try {
      const an = this.#audioCtx.createAnalyser();
      an.fftSize = 512;
      this.#audioCtx.createMediaStreamSource(stream).connect(an);
      const buf = new Float32Array(an.fftSize);
      let quietSince = performance.now();
      let loud = false;
      this.#voiceTimer = setInterval(() => {
        an.getFloatTimeDomainData(buf);
        let sum = 0;
        for (const v of buf) sum += v * v;
        const rms = Math.sqrt(sum / buf.length);
        const now = performance.now();
        if (rms > 0.01) {
          // The analyser window is ~10 ms long: the onset happened within it.
          if (!loud && now - quietSince >= 300) this.voiceOnsets.push(now - (buf.length / 48000) * 500);
          loud = true;
        } else {
          if (loud) quietSince = now;
          loud = false;
        }
        this.#voiceLoud = loud;
      }, 10);
    } catch { /* no Web Audio on this stream */ }
  }

  #startMeter(stream: MediaStream): void {
    try {
      this.#audioCtx = new AudioContext();
      const src = this.#audioCtx.createMediaStreamSource(stream);
      const an = this.#audioCtx.createAnalyser();
      an.fftSize = 1024;
      src.connect(an);
      const buf = new Float32Array(an.fftSize);
      this.#meterTimer = setInterval(() => {
        an.getFloatTimeDomainData(buf);
        let sum = 0;
        for (const v of buf) sum += v * v;
        const rms = Math.sqrt(sum / buf.length);
        // Roughly perceptual: -60 dBFS → 0, 0 dBFS → 1.
        const db = 20 * Math.log10(rms + 1e-9);
        this.meter.value = this.#muted ? 0 : Math.max(0, Math.min(1, (db + 60) / 60));
        this.counts.maxLevel = Math.max(this.counts.maxLevel, this.meter.value);
      }, 60);
    } catch { /* no Web Audio: meter stays at 0 */ }
  }

  /** Receiver playout delay for telop alignment, from the inbound audio stats. */
  async #pollStats(): Promise<void> {
    const pc = this.conn?.pc;
    if (!pc) return;
    const stats = await pc.getStats();
    stats.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "audio" && s.jitterBufferEmittedCount > 0) {
        const jb = (s.jitterBufferDelay / s.jitterBufferEmittedCount) * 1000;
        this.clock.playoutDelayMs = Math.min(400, jb + 20);
      }
    });
  }
}
