/**
 * Configuration from environment variables, validated once at start. A bad value stops the process with one
 * line naming the variable (see `loadConfig`). Every variable is documented in README's configuration table;
 * keep the two in sync (tests/config_test.ts checks that every key here appears in the README).
 */
import { z } from "zod";
import { ASR_ENGINE_SETTINGS, TTS_ENGINES } from "../protocol/engines.ts";
import { resolveVoice } from "../protocol/voices.ts";
import { parseSphinxArgs, SPHINX_SEARCHES } from "./sphinx_args.ts";

const bool = z.enum(["true", "false", "1", "0", "yes", "no"]).transform((v) =>
  ["true", "1", "yes"].includes(v)
);
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** Variable name → schema (with default). Names are the env var names. */
export const CONFIG_SCHEMA = {
  HOST: z.string().min(1).default("127.0.0.1"),
  PORT: int(0, 65535).default(8080),
  ORIGIN_HOST: z.string().min(1).default("127.0.0.1"),
  ORIGIN_PORT: int(0, 65535).default(8081),
  /** URL the edge uses to reach this origin; defaults to http://ORIGIN_HOST:ORIGIN_PORT. */
  ORIGIN_URL: z.url().optional(),
  PUBLIC_URL: z.url().optional(),
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, "must be a postgres:// URL").optional(),
  DATA_DIR: z.string().min(1).default("./data"),
  // up to 100: a supervised origin child is `<NODE_ID or origin-<hostname>-<port>>.<generation>`
  NODE_ID: z.string().regex(/^[A-Za-z0-9._-]{1,100}$/, "letters, digits, . _ - (max 100)").optional(),
  NODE_CAPACITY: int(1, 10000).default(60),
  /**
   * `main.ts origin` runs the origin as a supervised child and replaces it after this many sessions (wrtc peers
   * are never freed in Deno 2.9: ~76 KiB each; see origin/supervisor.ts). 0 = one unsupervised process.
   */
  ORIGIN_RECYCLE_SESSIONS: int(0, 1_000_000).default(250),
  /** A recycling origin ends the sessions still live after this long (they get `bye origin_shutdown`). */
  RECYCLE_DRAIN_MAX_MS: int(1000, 86_400_000).default(3_600_000),
  HEARTBEAT_MS: int(100, 60000).default(2000),
  NODE_TIMEOUT_MS: int(500, 600000).default(6000),
  INTERNAL_SECRET: z.string().min(32, "at least 32 characters").optional(),
  JWT_SECRET: z.string().min(32, "at least 32 characters").optional(),
  TOKEN_MAX_TTL_S: int(60, 3600).default(3600),
  RATE_LIMIT_RPS: int(1, 100000).default(20),
  RATE_LIMIT_BURST: int(1, 100000).default(60),
  MAX_BODY_BYTES: int(1024, 64 * 1024 * 1024).default(1024 * 1024),
  MAX_SESSIONS_PER_TENANT: int(1, 100000).default(100),
  /** Rooms one origin holds at most. */
  ROOMS_PER_ORIGIN: int(1, 10_000).default(100),
  /** Workers that run `shared` rooms' listener peers off the origin's main isolate; 0 keeps them in it. */
  ROOM_FORWARD_WORKERS: int(0, 16).default(1),
  /**
   * How long after a room tick was due its packets leave a forward worker (its own timer): absorbs the main
   * isolate's tick lateness; the listeners hear the room this much later. 0 sends on arrival.
   */
  ROOM_FORWARD_PLAYOUT_MS: int(0, 200).default(30),
  /** Backing track uploads: bytes of the WAV, and length once decoded. */
  TRACK_MAX_BYTES: int(1024, 512 * 1024 * 1024).default(64 * 1024 * 1024),
  TRACK_MAX_DURATION_MS: int(1000, 24 * 3_600_000).default(10 * 60 * 1000),
  /** SSE room viewers one edge process serves at most. */
  ROOM_VIEWERS_PER_EDGE: int(1, 1_000_000).default(10_000),
  ICE_DISCONNECTED_GRACE_MS: int(100, 600000).default(10000),
  MEDIA_TIMEOUT_MS: int(500, 3600000).default(15000),
  SESSION_CONNECT_TIMEOUT_MS: int(1000, 600000).default(20000),
  SHUTDOWN_GRACE_MS: int(0, 600000).default(10000),
  /** Database outage: events a session keeps in memory for the database, and how long any may wait. */
  SESSION_EVENT_BACKLOG_MAX: int(10, 1_000_000).default(5000),
  SESSION_EVENT_MAX_WAIT_MS: int(1000, 3_600_000).default(60_000),
  /** `auto`: the bundled Moonshine model, else sphinx when PocketSphinx is installed, else the bundled ctc. */
  ASR_ENGINE: z.enum(ASR_ENGINE_SETTINGS).default("auto"),
  /** The ctc or whisper model (folder under MODELS_DIR, absolute folder, or Hub id). */
  ASR_MODEL: z.string().min(1).default("parley-asr-en"),
  /** The Moonshine model folder (under MODELS_DIR, or absolute): tiny is bundled; base has the same layout. */
  MOONSHINE_MODEL: z.string().min(1).default("moonshine-tiny-en"),
  MODELS_DIR: z.string().min(1).default("./models"),
  ALLOW_REMOTE_MODELS: bool.default(false),
  ASR_WORKERS: int(1, 64).default(2),
  /** PocketSphinx (ASR_ENGINE=sphinx): unset keeps the Debian package's paths (origin/asr/sphinx/README.md). */
  SPHINX_MODEL_DIR: z.string().min(1).optional(),
  SPHINX_LM: z.string().min(1).optional(),
  SPHINX_DICT: z.string().min(1).optional(),
  /** A JSGF grammar that replaces the n-gram LM (a command vocabulary). */
  SPHINX_JSGF: z.string().min(1).optional(),
  /** Folder holding libpocketsphinx.so.3 and libsphinxbase.so.3. */
  SPHINX_LIB_DIR: z.string().min(1).optional(),
  /** `live`: bounded real-time search; `full`: PocketSphinx's defaults (origin/asr/sphinx/sphinx_detect.ts). */
  SPHINX_SEARCH: z.enum(SPHINX_SEARCHES).default("live"),
  /** How long a speech worker keeps an idle PocketSphinx decoder beyond its warm ones (each holds ~90 MB). */
  SPHINX_IDLE_DECODER_MS: int(0, 3_600_000).default(60_000),
  /** Further `-name value` decoder arguments, after the search preset. */
  SPHINX_ARGS: z.string().optional().refine((v) => {
    try {
      parseSphinxArgs(v);
      return true;
    } catch {
      return false;
    }
  }, { message: 'must be "-name value" pairs, e.g. "-beam 1e-60 -pl_window 5"' }),
  TTS_ENGINE: z.enum(TTS_ENGINES).default("flite"),
  /** The default voice; unset → the engine's own default (flite rms, espeak en-us). Validated below. */
  TTS_VOICE: z.string().min(1).optional(),
  /** TTS job synthesis slots; default cores − 1 (at least 1), leaving a core to live sessions. */
  TTS_WORKERS: int(0, 64).default(Math.max(1, (navigator.hardwareConcurrency ?? 2) - 1)),
  /**
   * More TTS job slots that take interactive chunks only (POST /v1/audio/speech, `priority: interactive`), so a
   * short request never waits for a batch chunk in progress. Only on an origin with TTS_WORKERS > 0.
   */
  TTS_INTERACTIVE_WORKERS: int(0, 16).default(1),
  TTS_MAX_TEXT_CHARS: int(1, 10_000_000).default(200_000),
  /** Longest upload POST /v1/audio/transcriptions transcribes synchronously (413 above). */
  TRANSCRIBE_MAX_SECONDS: int(1, 3600).default(600),
  /** Lease on a claimed TTS chunk; renewed every third of it while synthesizing, reclaimed after expiry. */
  TTS_LEASE_MS: int(500, 600_000).default(10_000),
  /** Fallback poll for TTS work when no NOTIFY arrives. */
  TTS_POLL_MS: int(50, 60_000).default(1000),
  /** Claim order: `fair` (the scheduler) or `fifo` (submit order, for comparison). */
  TTS_CLAIM_ORDER: z.enum(["fair", "fifo"]).default("fair"),
  /** An interactive TTS job ranks ahead of batch for its first this many characters only (0: all of them). */
  TTS_INTERACTIVE_RANK_CHARS: int(0, 10_000_000).default(2000),
  /** Every K-th claim of an origin's TTS worker ranks batch jobs first: batch gets ≥ 1 slot in K (0: never). */
  TTS_BATCH_SHARE_EVERY: int(0, 1000).default(4),
  /** Longest a TTS job chunk yields to pending live synthesis before it runs anyway (0: yield without limit). */
  TTS_LIVE_YIELD_MAX_MS: int(0, 600_000).default(1000),
  /** Claims per chunk (lease expiries + synthesis errors) before its job fails. */
  TTS_MAX_ATTEMPTS: int(1, 100).default(3),
  /** SIP user agent port (UDP and TCP) on the origin; unset = no phone calls. */
  SIP_PORT: int(0, 65535).optional(),
  /** Address the SIP agent binds to and advertises in Contact and SDP (must be reachable by callers). */
  SIP_HOST: z.string().min(1).default("127.0.0.1"),
  SIP_RTP_PORT_MIN: int(1024, 65534).default(40000),
  SIP_RTP_PORT_MAX: int(1025, 65535).default(40999),
  /** No RTP from a call (not held, no comfort noise) for this long → the call ends with `media_timeout`. */
  SIP_RTP_TIMEOUT_MS: int(1000, 3_600_000).default(30_000),
  /**
   * SCHED_FIFO priority of the RTP worker's thread (1–99; 0 = normal scheduling), so outbound packets leave on
   * time while other threads are busy. Needs CAP_SYS_NICE (or RLIMIT_RTPRIO); without it a lower nice value is
   * tried, then nothing changes (logged).
   */
  SIP_RTP_REALTIME_PRIORITY: int(0, 99).default(10),
  /** Comma-separated trunk addresses (IPv4 or IPv4/prefix) allowed to call without digest authentication. */
  SIP_TRUNKS: z.string().default("").transform((v, ctx) => {
    const list = v.split(",").map((x) => x.trim()).filter(Boolean);
    for (const item of list) {
      if (!/^\d{1,3}(\.\d{1,3}){3}(\/\d{1,2})?$/.test(item)) {
        ctx.addIssue({ code: "custom", message: `not an IPv4 address or CIDR: ${item}` });
        return z.NEVER;
      }
    }
    return list;
  }),
  /** Digest realm of the SIP credentials (`POST /v1/sip/credentials` hashes passwords with it). */
  SIP_REALM: z.string().regex(/^[A-Za-z0-9._-]{1,100}$/, "letters, digits, . _ - (max 100)").default(
    "parley",
  ),
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
  /** Delete ended sessions (with their events and transcripts) older than this many days; 0 keeps forever. */
  RETENTION_DAYS: int(0, 36500).default(0),
  /** Delete ended TTS jobs (with their audio) that finished more than this many days ago; 0 keeps forever. */
  TTS_AUDIO_RETENTION_DAYS: int(0, 36500).default(0),
  /** How TTS job audio is stored: Ogg Opus (about 14× smaller) or PCM as synthesized. Reads serve both. */
  TTS_AUDIO_CODEC: z.enum(["opus", "pcm"]).default("opus"),
  /** Opus bit rate of stored TTS job audio, bits/s (mono speech). */
  TTS_AUDIO_OPUS_BITRATE: int(6000, 128000).default(24000),
} as const;

export type ConfigKey = keyof typeof CONFIG_SCHEMA;
export type Config = { [K in ConfigKey]: z.output<typeof CONFIG_SCHEMA[K]> };

export class ConfigError extends Error {
  constructor(readonly variable: string, detail: string) {
    super(`invalid configuration: ${variable}: ${detail}`);
    this.name = "ConfigError";
  }
}

/** Parse config from an env map (default: the process environment). Throws ConfigError naming the variable. */
export function parseConfig(env: Record<string, string | undefined> = Deno.env.toObject()): Config {
  const out: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(CONFIG_SCHEMA)) {
    const raw = env[name];
    const r = (schema as z.ZodType).safeParse(raw === "" ? undefined : raw);
    if (!r.success) {
      const issue = r.error.issues[0];
      throw new ConfigError(name, `${issue.message} (got ${JSON.stringify(raw)})`);
    }
    out[name] = r.data;
  }
  const cfg = out as Config;
  if (cfg.NODE_TIMEOUT_MS <= cfg.HEARTBEAT_MS) {
    throw new ConfigError("NODE_TIMEOUT_MS", `must be greater than HEARTBEAT_MS (${cfg.HEARTBEAT_MS})`);
  }
  if (cfg.SIP_RTP_PORT_MAX <= cfg.SIP_RTP_PORT_MIN) {
    throw new ConfigError(
      "SIP_RTP_PORT_MAX",
      `must be greater than SIP_RTP_PORT_MIN (${cfg.SIP_RTP_PORT_MIN})`,
    );
  }
  if (cfg.TTS_VOICE !== undefined) {
    const v = resolveVoice(cfg.TTS_VOICE, { engine: cfg.TTS_ENGINE });
    if (!v || v.engine !== cfg.TTS_ENGINE) {
      throw new ConfigError("TTS_VOICE", `not a voice of TTS_ENGINE ${cfg.TTS_ENGINE} (see GET /v1/voices)`);
    }
    cfg.TTS_VOICE = v.voice;
  }
  return cfg;
}

/** For entry points: parse or print the one clear line and exit 2. */
export function loadConfigOrExit(env?: Record<string, string | undefined>): Config {
  try {
    return parseConfig(env);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`parley: ${e.message}`);
      Deno.exit(2);
    }
    throw e;
  }
}
