/**
 * The TTS job worker of one origin (an OriginComponent). `concurrency` slots, and `interactiveSlots` more that
 * take interactive jobs' chunks only (a short request never waits behind a batch chunk), each loop: wait for
 * the live priority gate, claim one chunk (the fair single-statement claim in db/tts_jobs.ts), synthesize it in the
 * worker pool while renewing the lease every leaseMs/3, write the result (exactly once), repeat. Idle slots
 * sleep until a NOTIFY on `parley_tts_work` (submit, requeue) or the fallback poll. Every origin also reclaims
 * expired leases (chunks of crashed origins) every leaseMs/2, with SKIP LOCKED so origins don't collide, and
 * finishes long submits whose second statement never ran (an edge that died mid-submit).
 *
 * close(): stop claiming, give held chunks back at once (another origin takes them without waiting for lease
 * expiry), close the synthesis pool.
 */
import type { Database } from "../../db/client.ts";
import {
  claimChunk,
  type ClaimedChunk,
  type ClaimOrder,
  completeInterruptedSubmits,
  extendLease,
  failChunk,
  queueDepth,
  reclaimExpired,
  releaseChunk,
  WORK_CHANNEL,
  writeResult,
} from "../../db/tts_jobs.ts";
import { log as rootLog, type Logger } from "../../lib/log.ts";
import { chunkText } from "../../protocol/tts_text.ts";
import { ssmlJobChunks } from "../../protocol/ssml.ts";
import { registry } from "../../lib/metrics.ts";
import { isDatabaseUnavailable } from "../../db/unavailable.ts";
import type { OriginComponent } from "../services.ts";
import type { PriorityGate } from "./priority_gate.ts";
import type { ChunkSynthesizer } from "./synth.ts";
import { chunkTrim } from "./chunk_trim.ts";
import { encodeStoredAudio, type StoredAudio, type StoredCodec } from "../../lib/audio/stored_audio.ts";

export interface TtsWorkerOptions {
  nodeId: string;
  /** Chunks synthesized at once on this origin (TTS_WORKERS). 0 = this origin runs no TTS jobs. */
  concurrency: number;
  /** More slots that claim interactive jobs' chunks only (TTS_INTERACTIVE_WORKERS). Default 0. */
  interactiveSlots?: number;
  leaseMs: number;
  /** Fallback poll when no NOTIFY arrives. */
  pollMs: number;
  order: ClaimOrder;
  /** Claims per chunk before its job fails (lease expiries and synthesis errors both count). */
  maxAttempts: number;
  synth: ChunkSynthesizer;
  gate?: PriorityGate;
  /** Shares between priority classes (lib/config.ts: TTS_INTERACTIVE_RANK_CHARS, TTS_BATCH_SHARE_EVERY,
   * TTS_LIVE_YIELD_MAX_MS); absent = strict priority. */
  share?: { interactiveChars: number; batchEvery: number; liveYieldMaxMs: number };
  /** How chunk audio is stored (TTS_AUDIO_CODEC, TTS_AUDIO_OPUS_BITRATE). Default: Ogg Opus at its default rate. */
  storage?: { codec: StoredCodec; bitrate?: number };
  log?: Logger;
}

const mClaims = registry.counter("parley_tts_claims_total", "Chunks claimed by this origin, by claim order");
const mChunks = registry.counter("parley_tts_chunks_total", "Chunks processed by outcome");
const mSynth = registry.histogram(
  "parley_tts_chunk_synth_seconds",
  "Synthesis time of one chunk (pool queue + engine)",
  [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10],
);
const mFirstAudio = registry.histogram(
  "parley_tts_first_audio_seconds",
  "Job submitted → its first chunk's audio stored",
  [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
);
const mRepaired = registry.counter(
  "parley_tts_interrupted_submits_total",
  "Long submits whose remaining chunks this origin inserted, by outcome (completed, failed)",
);
const mExpired = registry.counter(
  "parley_tts_lease_expiries_total",
  "Chunks requeued after their lease expired",
);
const mStoredBytes = registry.counter(
  "parley_tts_audio_stored_bytes_total",
  "Bytes of chunk audio written to the database, by stored codec",
);
const mStoredSeconds = registry.counter(
  "parley_tts_audio_stored_seconds_total",
  "Seconds of chunk audio written to the database, by stored codec (bytes/seconds = bytes per audio second)",
);
const mEncode = registry.histogram(
  "parley_tts_audio_encode_seconds",
  "Time to compress one chunk's audio for storage",
  [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2],
);
const mSlotErrors = registry.counter(
  "parley_tts_slot_errors_total",
  "Failed turns of a worker slot's claim loop, by kind (database_unavailable | other)",
);
/** A slot whose claim failed tries again after this, doubling up to RETRY_MAX_MS while failures go on. */
const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 2000;
const mQueue = registry.gauge("parley_tts_queue_depth", "Claimable chunks by job priority (sampled)");
const mInflight = registry.gauge("parley_tts_chunks_in_flight", "Chunks this origin is synthesizing");

export class TtsJobWorker implements OriginComponent {
  readonly name = "tts_jobs";
  #state: "running" | "closing" | "closed" = "running";
  /** Claims made by all slots: every `share.batchEvery`-th ranks batch first. */
  #claimTurn = 0;
  #wakers: Array<() => void> = [];
  /** Aborted when close() begins: ends a slot's back-off pause at once. */
  #stopping = new AbortController();
  #loops: Promise<void>[] = [];
  #held = new Map<string, ClaimedChunk>();
  #timers: ReturnType<typeof setInterval>[] = [];
  #unlisten?: () => Promise<void>;
  #closing?: Promise<void>;
  #depth: Record<string, number> = { interactive: 0, batch: 0 };
  readonly #log: Logger;
  /** Chunks written by this worker (tests, benchmarks). */
  completed = 0;

  private constructor(private readonly database: Database, private readonly opts: TtsWorkerOptions) {
    this.#log = (opts.log ?? rootLog).child({ component: "tts_jobs", node_id: opts.nodeId });
  }

  static async start(database: Database, opts: TtsWorkerOptions): Promise<TtsJobWorker> {
    const w = new TtsJobWorker(database, opts);
    const slots = opts.concurrency + (opts.interactiveSlots ?? 0);
    if (slots > 0) {
      w.#unlisten = await database.listen(WORK_CHANNEL, () => w.#wake(), () => w.#wake());
    }
    const reclaimEvery = Math.max(200, Math.floor(opts.leaseMs / 2));
    w.#timers.push(setInterval(() => void w.#reclaim(), reclaimEvery));
    w.#timers.push(setInterval(() => w.#wake(), opts.pollMs));
    mQueue.collect(() => Object.entries(w.#depth).map(([priority, n]) => [{ priority }, n]));
    mInflight.collect(() => w.#held.size);
    for (let i = 0; i < slots; i++) w.#loops.push(w.#loop(i, i >= opts.concurrency));
    w.#log.info("tts job worker started", {
      concurrency: opts.concurrency,
      interactive_slots: opts.interactiveSlots ?? 0,
      lease_ms: opts.leaseMs,
      order: opts.order,
    });
    return w;
  }

  ready(): boolean {
    return this.#state === "running" && (this.opts.concurrency === 0 || this.opts.synth.ready());
  }

  /** Chunks currently held (claimed, not yet written). */
  get inFlight(): number {
    return this.#held.size;
  }

  #wake(): void {
    const w = this.#wakers;
    this.#wakers = [];
    for (const f of w) f();
  }

  /** Waits `ms`, or less if close() begins meanwhile (polls and NOTIFYs do not cut it short). */
  #pause(ms: number): Promise<void> {
    const signal = this.#stopping.signal;
    if (signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done, { once: true });
    });
  }

  #sleep(): Promise<void> {
    if (this.#state !== "running") return Promise.resolve(); // close() already woke everyone
    return new Promise((resolve) => this.#wakers.push(resolve));
  }

  async #loop(slot: number, interactiveOnly: boolean): Promise<void> {
    // While the database is unreachable every claim fails at once: one warning when it starts, retries that
    // back off to 2 s, one line when it is back (not an error with a stack four times a second per slot).
    let unreachableSince: number | null = null;
    let retryMs = RETRY_MIN_MS;
    while (this.#state === "running") {
      try {
        const share = this.opts.share;
        if (this.opts.gate) await this.opts.gate.batchTurn({ maxWaitMs: share?.liveYieldMaxMs });
        if (this.#state !== "running") break;
        const every = share?.batchEvery ?? 0;
        const c = await claimChunk(this.database, {
          nodeId: this.opts.nodeId,
          leaseMs: this.opts.leaseMs,
          order: this.opts.order,
          interactiveOnly,
          share: {
            interactiveChars: share?.interactiveChars,
            batchFirst: !interactiveOnly && every > 0 && this.#claimTurn++ % every === every - 1,
          },
        });
        if (unreachableSince !== null) {
          this.#log.info("tts worker: database reachable again", {
            slot,
            unreachable_ms: Math.round(performance.now() - unreachableSince),
          });
          unreachableSince = null;
        }
        retryMs = RETRY_MIN_MS;
        if (!c) {
          await this.#sleep();
          continue;
        }
        if (this.#state !== "running") {
          await releaseChunk(this.database, c); // claimed while closing: give it back at once
          break;
        }
        mClaims.inc({ order: this.opts.order });
        await this.#process(c);
      } catch (err) {
        if (this.#state !== "running") break;
        if (isDatabaseUnavailable(err)) {
          if (unreachableSince === null) {
            unreachableSince = performance.now();
            this.#log.warn("tts worker: database unreachable; claims wait for it", {
              slot,
              why: String(err),
            });
          }
          mSlotErrors.inc({ kind: "database_unavailable" });
        } else {
          this.#log.error("tts worker slot error", { slot, err });
          mSlotErrors.inc({ kind: "other" });
        }
        await this.#pause(retryMs);
        retryMs = Math.min(RETRY_MAX_MS, retryMs * 2);
      }
    }
  }

  async #process(c: ClaimedChunk): Promise<void> {
    const key = `${c.jobId}:${c.idx}`;
    this.#held.set(key, c);
    let lost = false;
    const renew = setInterval(() => {
      extendLease(this.database, c, this.opts.leaseMs).then((ok) => {
        if (!ok) lost = true;
      }, (err) => this.#log.warn("lease renewal failed", { err: String(err) }));
    }, Math.max(50, Math.floor(this.opts.leaseMs / 3)));
    const t0 = performance.now();
    try {
      let audio;
      try {
        audio = await this.opts.synth.synthesize(c.text, c.voice, c.engine, c.sampleRate, {
          speed: c.speed,
          ssml: c.ssml,
          trim: chunkTrim(c),
        });
      } catch (err) {
        if (this.#state !== "running" || lost) return;
        const outcome = await failChunk(
          this.database,
          c,
          String((err as Error)?.message ?? err),
          this.opts.maxAttempts,
        );
        mChunks.inc({ outcome: outcome === "job_failed" ? "job_failed" : "error" });
        this.#log.warn("chunk synthesis failed", {
          job_id: c.jobId,
          idx: c.idx,
          attempt: c.attempt,
          outcome,
          err,
        });
        return;
      }
      mSynth.observe((performance.now() - t0) / 1000);
      if (lost || this.#state !== "running") {
        mChunks.inc({ outcome: "lease_lost" });
        return;
      }
      // An interactive job's first chunk (a lead piece, about a second) is kept as PCM: it is on the path to the
      // first byte of POST /v1/audio/speech, where an Opus encode here and a decode at the edge cost ~40 ms.
      const stored = c.priority === "interactive" && c.idx === 0
        ? { codec: "pcm" as const, bytes: audio.pcm, samples: audio.pcm.length >> 1 }
        : await this.#compress(audio.pcm, audio.sampleRate);
      if (lost || this.#state !== "running") {
        mChunks.inc({ outcome: "lease_lost" });
        return;
      }
      const w = await writeResult(this.database, c, {
        pcm: stored.bytes,
        audioMs: audio.audioMs,
        sampleRate: audio.sampleRate,
        codec: stored.codec,
        samples: stored.samples,
      });
      if (w.accepted) {
        mStoredBytes.inc({ codec: stored.codec }, stored.bytes.length);
        mStoredSeconds.inc({ codec: stored.codec }, stored.samples / audio.sampleRate);
      }
      if (w.accepted) {
        this.completed++;
        mChunks.inc({ outcome: "done" });
        if (w.firstAudioSeconds !== undefined) mFirstAudio.observe(w.firstAudioSeconds);
      } else {
        mChunks.inc({ outcome: "refused" });
      }
    } finally {
      clearInterval(renew);
      this.#held.delete(key);
    }
  }

  /** Compress a chunk for storage; if the encoder cannot (no capacity, a fault) the chunk is stored as PCM. */
  async #compress(pcm: Uint8Array, sampleRate: number): Promise<StoredAudio> {
    const codec = this.opts.storage?.codec ?? "opus";
    const t0 = performance.now();
    try {
      const out = await encodeStoredAudio(pcm, sampleRate, codec, { bitrate: this.opts.storage?.bitrate });
      if (codec !== "pcm") mEncode.observe((performance.now() - t0) / 1000);
      return out;
    } catch (err) {
      this.#log.warn("chunk audio compression failed; storing PCM", { codec, err: String(err) });
      return { codec: "pcm", bytes: pcm, samples: pcm.length >> 1 };
    }
  }

  async #reclaim(): Promise<void> {
    if (this.#state !== "running") return;
    try {
      const r = await reclaimExpired(this.database, this.opts.maxAttempts);
      if (r.requeued) {
        mExpired.inc(undefined, r.requeued);
        this.#log.warn("requeued chunks with expired leases", {
          count: r.requeued,
          failed_jobs: r.failedJobs,
        });
      }
      const fixed = await completeInterruptedSubmits(
        this.database,
        (text, ssml) => ssml ? ssmlJobChunks(text) : chunkText(text),
      );
      if (fixed.completed.length || fixed.failed.length) {
        mRepaired.inc({ outcome: "completed" }, fixed.completed.length);
        mRepaired.inc({ outcome: "failed" }, fixed.failed.length);
        this.#log.warn("finished interrupted submits", { completed: fixed.completed, failed: fixed.failed });
      }
      this.#depth = await queueDepth(this.database);
    } catch (err) {
      if (this.#state === "running") this.#log.warn("lease reclaim failed", { err: String(err) });
    }
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#state = "closing";
      for (const t of this.#timers) clearInterval(t);
      this.#stopping.abort();
      this.#wake();
      const held = [...this.#held.values()];
      await Promise.allSettled(held.map((c) => releaseChunk(this.database, c)));
      await this.#unlisten?.().catch(() => {});
      await this.opts.synth.close();
      await Promise.allSettled(this.#loops);
      this.#state = "closed";
      this.#log.info("tts job worker closed", { released: held.length });
    })();
    return this.#closing;
  }
}
