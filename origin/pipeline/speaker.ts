/**
 * The speaking half of a session's pipeline: text → sentences → synthesis (off-loop, a few sentences ahead) →
 * 48 kHz outbound audio, one utterance per sentence, with `utterance` (started / finished / interrupted) and
 * `telop` (word and phoneme timings) events at playout. `interrupt()` stops playback (barge-in is decided by
 * the owner, ./speech_pipeline.ts).
 *
 * Quick start: when a `say` begins in silence, its first sentence is cut into a short lead piece and the rest
 * (protocol/lead_split.ts), each its own utterance with its own telop: the lead is synthesized alone and plays
 * while the rest is synthesized. The pauses the engine puts around each piece are trimmed to a phrase break
 * (../tts/trim_edges.ts), so the pieces join like one sentence; every telop stays exact for its own audio.
 */
import type { TelopEvent, UtteranceEvent } from "../../protocol/session_messages.ts";
import type { PipelineHost, SayOptions } from "./types.ts";
import { chunkSsml, parseSsml, type SsmlDocument, SsmlError } from "../../protocol/ssml.ts";
import type { TtsJobResult } from "../inference/protocol.ts";
import type { SynthPhoneme, SynthWord } from "../tts/engine.ts";
import { splitSentences } from "../tts/sentences.ts";
import { splitLead } from "../../protocol/lead_split.ts";
import { JOIN_PAUSE_MS, START_PAUSE_MS, trimEdges } from "../tts/trim_edges.ts";
import { asInt16 } from "../../lib/audio/resampler.ts";
import { ClosedError } from "../../lib/closed_error.ts";
import type { Logger } from "../../lib/log.ts";
import { registry } from "../../lib/metrics.ts";

/** The shared synthesis pool, as the pipeline sees it. */
export interface SynthesisEngines {
  /**
   * 48 kHz synthesis of one sentence (or one chunk of normalised SSML); `voice` as in session options
   * (protocol/voices.ts names: "flite:rms", "espeak:de", "en-us").
   */
  synthesize(
    text: string,
    voice: string | undefined,
    owner: string,
    opts?: { speed?: number; ssml?: SsmlDocument },
  ): Promise<TtsJobResult>;
  /** Reject the queued jobs of an owner. */
  cancel(owner: string): void;
}

export interface SpeakerInit {
  host: Pick<PipelineHost, "emit" | "outbound">;
  engines: SynthesisEngines;
  /** Key of this speaker's synthesis jobs (for cancelling them). */
  owner: string;
  /** The session's voice and speed options, read when a `say` starts. */
  voice: () => string | undefined;
  speed: () => number | undefined;
  /** Longest text accepted by say(). */
  maxChars: number;
  /** Cut the first sentence of a say that starts in silence into a lead piece and the rest (default true). */
  leadPiece?: boolean;
  /** Names the object in ClosedError. */
  name: string;
  log: Logger;
}

interface Utterance {
  id: string;
  text: string;
  words: SynthWord[];
  phonemes: SynthPhoneme[];
  durationMs: number;
  estimated: boolean;
  state: "queued" | "playing" | "done";
}

const mTtsSeconds = registry.counter(
  "parley_tts_audio_seconds_total",
  "Synthesized audio queued for playout",
);
/** Characters of text per SSML utterance (the first is heard sooner when chunks are short). */
const SSML_CHUNK_CHARS = 200;
/** Something an engine can say: a letter or a digit. */
const SPEAKABLE = /[\p{L}\p{N}]/u;

const mBargeIn = registry.counter("parley_barge_in_total", "Playback stopped because the user spoke");
const mLeadSplits = registry.counter(
  "parley_say_lead_splits_total",
  "First sentences of a say cut into a lead piece and the rest, by where the cut is (punctuation, word; " +
    "none_slow: not cut, synthesis too slow for the rest to be ready in time)",
);
const mFirstAudio = registry.histogram(
  "parley_say_first_audio_seconds",
  "From a say that starts in silence to its first audio queued for playout, by lead (split: cut, whole: not)",
  [0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2, 5],
);

/** A piece of a say: one utterance, synthesized by one job; `trim` shortens its edge pauses (ms kept). */
interface Piece {
  text: string;
  ssml?: SsmlDocument;
  trim?: { headMs?: number; tailMs?: number };
}
/** Audio per character of text before any is measured (an English voice at its own rate). */
const DEFAULT_AUDIO_MS_PER_CHAR = 60;
/** Weight of the newest synthesis in the moving averages. */
const PACE_ALPHA = 0.3;

export class Speaker {
  private closed = false;
  private sayCounter = 0;
  /** Bumped by interrupt/close: sentences of an older `say` still being synthesized are not queued. */
  private generation = 0;
  private speakChain: Promise<void> = Promise.resolve();
  /** Says whose sentences are not all queued yet. */
  private queuing = 0;
  /** Recent synthesis wall time and audio per character of text (moving averages; null until measured). */
  private synthMsPerChar: number | null = null;
  private audioMsPerChar = DEFAULT_AUDIO_MS_PER_CHAR;
  private readonly utterances = new Map<string, Utterance>();
  private readonly log: Logger;

  constructor(private readonly init: SpeakerInit) {
    this.log = init.log;
    init.host.outbound.onPlayout((e) => this.onPlayout(e));
  }

  /** Something is queued, being synthesized for playout, or playing. */
  get speaking(): boolean {
    for (const u of this.utterances.values()) if (u.state !== "done") return true;
    return this.init.host.outbound.queuedMs() > 0;
  }

  /** Speak `text` sentence by sentence after what is already queued. Resolves once all of it is queued. */
  say(text: string, opts: SayOptions = {}): Promise<void> {
    if (this.closed) return Promise.reject(new ClosedError(this.init.name));
    let sentences: Piece[];
    if (opts.ssml) {
      if (text.length > this.init.maxChars) {
        return Promise.reject(new SsmlError(`SSML longer than ${this.init.maxChars} characters`, 0));
      }
      let doc: SsmlDocument;
      try {
        doc = parseSsml(text); // user markup stops here: only normalised segments reach an engine
      } catch (e) {
        return Promise.reject(e);
      }
      // one utterance per chunk: chunks end at segment or sentence boundaries, never inside a tag
      sentences = chunkSsml(doc, SSML_CHUNK_CHARS).map((segments) => ({
        text: segments.flatMap((s) => s.kind === "text" ? [s.text] : []).join(" "),
        ssml: { segments, text: "" },
      }));
    } else {
      const clean = text.trim().slice(0, this.init.maxChars);
      sentences = clean ? splitSentences(clean) : [];
    }
    // a sentence with nothing to speak (only punctuation or control characters) would be an utterance without
    // audio: it is dropped here, so every utterance has audio and its telop
    sentences = sentences.filter((s) => SPEAKABLE.test(s.text));
    if (!sentences.length) return Promise.resolve();
    const t0 = performance.now();
    const fromSilence = !this.speaking && this.queuing === 0;
    const split = fromSilence && (this.init.leadPiece ?? true) ? this.cutLead(sentences[0]) : null;
    if (split) sentences.splice(0, 1, ...split);
    const sayId = ++this.sayCounter;
    const generation = this.generation;
    const v = opts.voice ?? this.init.voice();
    const speed = opts.speed ?? this.init.speed();
    // Sentences are synthesized up to `lookahead` ahead of the one being queued: the first plays while the
    // next ones render, and a long text never floods the shared pool (other sessions' synthesis interleaves).
    // The first sentence is submitted alone: its synthesis decides the first audio, and a second sentence
    // rendering beside it would take CPU from it; the rest start once it is done, long before it has played.
    const lookahead = 2;
    const jobs: Array<Promise<{ ok: true; r: TtsJobResult } | { ok: false; e: Error }> | undefined> = [];
    const start = (i: number) => {
      if (i >= sentences.length || jobs[i] || generation !== this.generation || this.closed) return;
      const { text, ssml } = sentences[i];
      const submitted = performance.now();
      jobs[i] = this.init.engines.synthesize(text, v, this.init.owner, { speed, ssml }).then(
        (
          r,
        ) => (this.learnPace(text.length, performance.now() - submitted, r.durationMs),
          { ok: true as const, r }),
        (e) => ({ ok: false as const, e }),
      );
    };
    // a say queued behind audio starts its synthesis when its turn comes, not beside the one being prepared
    if (fromSilence) start(0);
    const run = async () => {
      for (let i = 0; i < sentences.length; i++) {
        start(i);
        const job = jobs[i];
        if (!job) return; // cancelled (interrupt / close)
        const res = await job;
        // after a lead piece, the rest of its sentence renders alone: it must be ready before the lead has played
        for (let k = i + 1; k <= i + (split && i === 0 ? 1 : lookahead); k++) start(k);
        if (this.closed || generation !== this.generation) return;
        if (!res.ok) {
          this.log.warn("synthesis failed", { error: res.e });
          await this.safeEmit({
            type: "error",
            code: "synthesis_failed",
            message: String(res.e?.message ?? res.e),
          });
          return;
        }
        const raw = res.r;
        const whole = { ...raw, pcm: asInt16(raw.pcm) };
        const trim = sentences[i].trim;
        const r = trim ? trimEdges(whole, trim) : whole;
        const pcm = r.pcm;
        if (!pcm.length) continue; // the engine found nothing to say in it: no utterance, no events
        const id = `u${sayId}.${i + 1}`;
        this.utterances.set(id, {
          id,
          text: sentences[i].text,
          words: r.words,
          phonemes: r.phonemes,
          durationMs: r.durationMs,
          estimated: r.estimated,
          state: "queued",
        });
        this.init.host.outbound.enqueue(id, pcm);
        this.init.host.outbound.endUtterance(id);
        mTtsSeconds.inc(undefined, pcm.length / r.sampleRate);
        if (fromSilence && i === 0) {
          mFirstAudio.observe((performance.now() - t0) / 1000, { lead: split ? "split" : "whole" });
        }
      }
    };
    this.queuing++;
    const p = this.speakChain.then(run).finally(() => this.queuing--);
    this.speakChain = p.catch(() => {});
    return p;
  }

  /**
   * The lead piece and the rest of a say's first sentence (or first SSML chunk, cut inside its first text run),
   * or null when it is too short or has no safe cut. The start of the say is trimmed to START_PAUSE_MS.
   */
  private cutLead(first: Piece): Piece[] | null {
    const seg = first.ssml?.segments[0];
    const cut = splitLead(first.ssml ? (seg?.kind === "text" ? seg.text : "") : first.text);
    if (!cut) {
      // an SSML chunk that opens with a <break> keeps it
      if (!first.ssml || seg?.kind === "text") first.trim = { headMs: START_PAUSE_MS };
      return null;
    }
    // the rest must be ready before the lead has played, or the sentence stops in the middle: on a machine so
    // loaded that it would not be, the sentence is synthesized whole (a later start, no gap)
    const leadAudioMs = this.audioMsPerChar * cut.lead.text.length;
    if (this.synthMsPerChar !== null && this.synthMsPerChar * cut.rest.text.length > leadAudioMs) {
      mLeadSplits.inc({ at: "none_slow" });
      if (!first.ssml || seg?.kind === "text") first.trim = { headMs: START_PAUSE_MS };
      return null;
    }
    mLeadSplits.inc({ at: cut.at });
    this.log.debug("say: first sentence cut into a lead piece", {
      at: cut.at,
      lead_chars: cut.lead.text.length,
    });
    const pause = JOIN_PAUSE_MS[cut.at === "punctuation" ? "clause" : "word"];
    const lead: Piece = { text: cut.lead.text, trim: { headMs: START_PAUSE_MS, tailMs: pause } };
    const rest: Piece = { text: cut.rest.text, trim: { headMs: pause } };
    if (first.ssml && seg?.kind === "text") {
      const restSegments = [{ ...seg, text: cut.rest.text }, ...first.ssml.segments.slice(1)];
      lead.ssml = { segments: [{ ...seg, text: cut.lead.text }], text: "" };
      rest.ssml = { segments: restSegments, text: "" };
      rest.text = restSegments.flatMap((s) => s.kind === "text" ? [s.text] : []).join(" ");
    }
    return [lead, rest];
  }

  private learnPace(chars: number, wallMs: number, audioMs: number): void {
    if (chars < 8 || audioMs <= 0) return;
    const avg = (old: number | null, x: number) => old === null ? x : old + PACE_ALPHA * (x - old);
    this.synthMsPerChar = avg(this.synthMsPerChar, wallMs / chars);
    this.audioMsPerChar = avg(this.audioMsPerChar, audioMs / chars);
  }

  /**
   * Stop speaking now: queued audio is dropped, sentences still being synthesized are not queued, and each
   * utterance cut gets `interrupted` with what had been played. Returns false when nothing was being spoken.
   */
  interrupt(): boolean {
    if (this.closed || !this.speaking) return false;
    this.generation++;
    this.init.engines.cancel(this.init.owner);
    const cut = this.init.host.outbound.clear();
    mBargeIn.inc();
    const seen = new Set<string>();
    for (const c of cut) {
      seen.add(c.utteranceId);
      this.interrupted(c.utteranceId, c.playedMs);
    }
    for (const u of this.utterances.values()) {
      if (u.state !== "done" && !seen.has(u.id)) this.interrupted(u.id, 0);
    }
    this.log.info("barge-in: playback stopped", { utterances: cut.length });
    return true;
  }

  /** Idempotent: queued synthesis is cancelled, no more audio is queued and no more events are sent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.generation++;
    this.init.engines.cancel(this.init.owner);
  }

  private interrupted(id: string, playedMs: number): void {
    const u = this.utterances.get(id);
    if (!u || u.state === "done") return;
    u.state = "done";
    this.utterances.delete(id);
    const spoken = u.words.filter((w) => w.start_ms < playedMs);
    const playedText = spoken.length ? u.text.slice(0, spoken[spoken.length - 1].char_end) : "";
    const event: Omit<UtteranceEvent, "seq"> = {
      type: "utterance",
      utterance_id: id,
      phase: "interrupted",
      played_ms: Math.round(playedMs),
      played_text: playedText,
    };
    void this.safeEmit(event);
  }

  private onPlayout(
    e: { utteranceId: string; phase: "started" | "finished"; sessionTimeMs: number; playedMs: number },
  ) {
    if (this.closed) return;
    const u = this.utterances.get(e.utteranceId);
    if (!u || u.state === "done") return;
    if (e.phase === "started") {
      u.state = "playing";
      const started: Omit<UtteranceEvent, "seq"> = {
        type: "utterance",
        utterance_id: u.id,
        phase: "started",
        played_ms: 0,
      };
      const telop: Omit<TelopEvent, "seq"> = {
        type: "telop",
        utterance_id: u.id,
        text: u.text,
        playout_start_ms: Math.round(e.sessionTimeMs),
        duration_ms: Math.round(u.durationMs),
        words: u.words,
        phonemes: u.phonemes,
        estimated: u.estimated,
      };
      void this.safeEmit(started);
      void this.safeEmit(telop);
    } else {
      u.state = "done";
      this.utterances.delete(u.id);
      void this.safeEmit({
        type: "utterance",
        utterance_id: u.id,
        phase: "finished",
        played_ms: Math.round(e.playedMs),
      });
    }
  }

  private async safeEmit(event: Parameters<PipelineHost["emit"]>[0]): Promise<void> {
    if (this.closed) return;
    try {
      await this.init.host.emit(event);
    } catch (err) {
      if (!this.closed) this.log.warn("emit failed", { error: err });
    }
  }
}
