/**
 * Rooms benchmark: how many WHEP listeners one origin process feeds from one room, on this machine's cores.
 *
 * Three kinds of process, so the origin's CPU is its own:
 *   - the ORIGIN (child, `--serve`): a RoomManager with one room and a publisher as the Session is one — its
 *     mic frames (a spoken WAV, looped) pushed into the room's feed from the 10 ms clock, and its own paced
 *     outbound audio (PacedOutboundAudio on a real RTCAudioSource, same clock, every frame gap recorded)
 *     tapped into the room as the `voice` source. Listeners hear `speaker`.
 *   - CLIENT HOSTS (children, `--clients`): recvonly wrtc listener clients, at most `--per-client` each (the
 *     sink callbacks of one host's listeners share its JS thread; spreading them keeps the receive gap a
 *     measure of what the origin sends rather than of one overloaded client thread).
 *   - this DRIVER: steps the listener count, joins with bounded concurrency (`--join-concurrency` per host,
 *     hosts one after another), a per-join timeout and a per-step deadline. A step that cannot reach its
 *     count is measured at what it reached, reported with its failures by stage, and ends the stepping.
 *
 * At each step, after a settle time, for `--seconds`:
 *   - origin CPU (cores) and CPU per thread name (/proc/<pid>/task/<tid>/{comm,stat}); the clients' CPU
 *   - the publisher's outbound pacing: p99 gap between frames handed to its RTCAudioSource (goal ≤ 20 ms)
 *   - listeners' send gap at the origin (frames handed to each listener's source) p99
 *   - listeners' receive gap at the clients (RTCAudioSink callbacks) p99 (goal ≤ 40 ms)
 *   - the room tick's duration (the controller handing every listener its frame) p99
 * and prints a table and the largest count meeting both goals.
 *
 * `--variants full,fanout,speech,maxaveragebitrate=96000` runs the steps once per variant of how listeners
 * are sent Opus (a room `audio_profile`, `speech` = SPEECH_OPUS, or explicit offer parameters), each on a
 * fresh origin: the levers side by side in one run. A `+rt` suffix (`full+rt`) keeps libwebrtc's real-time
 * send threads, which rooms demote by default (origin/session/wrtc_threads.ts). An `@N` suffix (`shared@2`)
 * runs a shared room's listener peers in N forward workers (`@0`: in the origin's main isolate; default 1),
 * and `:pN` after it (`shared@1:p0`) sets their playout delay to N ms (0: send on arrival; default the
 * origin's ROOM_FORWARD_PLAYOUT_MS default), `:nN` their thread's nice boost (`:n0`: none; default 5). `--perf-step N` samples the origin with `perf record` during
 * step N's window and prints where its CPU goes by library and by function.
 * CPU is also reported per unit of work (ms per second of audio handed to one listener): on a contended
 * machine the origin falls behind and does less work, so cores alone understate its cost.
 *
 *   deno run -A bench/rooms.ts [--steps 50,100,200,300,500] [--seconds 8] [--settle 3] [--variants full]
 *     [--per-client 25] [--join-concurrency 8] [--join-timeout-ms 20000] [--step-deadline-s 240]
 *     [--perf-step 100] [--origin URL] [--client-kind wrtc|werift] [--pin] [--live-every 1]
 *     [--client-nice 0] [--client-srtp aes-cm|any] [--origin-v8-flags --trace-gc]
 *   deno run -A bench/rooms.ts --serve [--port 0] [--variant full]     (the origin alone)
 *
 * `--client-kind werift` makes the listeners light werift peers that count packets and their arrival gaps
 * (origin/rooms/test_packet_listener.ts; one in five also decodes for the energy check) instead of wrtc peers that
 * decode and play: a wrtc listener costs ~14 ms of CPU per listener·s, so on 2 cores a few hundred of them
 * starve the origin they measure. Their receive gap is then between packets (20 ms nominal), not sink frames.
 *
 * `--live-every K` measures the receive side on every K-th client host only: the others are stopped (SIGSTOP)
 * as soon as their listeners joined, so their listeners stay joined and the origin sends to all of them (its
 * whole per-listener work), while their packets wait unread in the kernel instead of costing client CPU. The
 * bench origin then gets a 10-minute ICE grace, so its liveness check (no RTCP from a stopped client) does not
 * close them. Receive gaps and "hearing" are of the sampled listeners; the origin's figures are of all.
 *
 * `--client-nice N` runs the client hosts N nice steps below the origin: they stand in for other machines, so
 * the origin gets the CPU first, as on a machine of its own; their own scheduling delays count against the
 * receive gaps they measure (a conservative figure).
 *
 * `--pin` runs the origin on CPU 0 and the client hosts on CPU 1 (taskset): the origin's figures are then its
 * own core's, whatever the clients cost; the clients' receive gaps show when one core cannot carry them.
 *
 * With `--origin URL` the clients use an origin started with `--serve` elsewhere (one variant; its CPU
 * figures come from its own /proc).
 */
import { configureLogging } from "../lib/log.ts";
import { registry } from "../lib/metrics.ts";
import { readWav } from "../origin/pipeline/wav.ts";
import { BackingTrack } from "../origin/rooms/backing_track.ts";
import { type OpusSendParams, shapeOpusOffer, SPEECH_OPUS } from "../origin/rooms/opus_profile.ts";
import { RoomManager } from "../origin/rooms/room_manager.ts";
import { ListenerClient } from "../origin/rooms/test_listener.ts";
import { PacketListenerClient } from "../origin/rooms/test_packet_listener.ts";
import { FRAME_SAMPLES, frameClock, PacedOutboundAudio } from "../origin/session/outbound_audio.ts";
import { cpuSeconds, procStats } from "../origin/session/proc_stats.ts";
import { exitCleanly, RTCAudioSource } from "../origin/session/wrtc.ts";
import type { RTCAudioData } from "../origin/session/wrtc.ts";
import { ROOM_AUDIO_PROFILES, type RoomAudioProfile } from "../protocol/rooms.ts";
import { summarize } from "./churn.ts";

function arg(name: string, dflt: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : dflt;
}

const loadavg = () => Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");

/** CPU seconds per thread name (threads of the same name summed; "deno" = the JS main thread + V8 helpers). */
function cpuByThread(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of Deno.readDirSync("/proc/self/task")) {
    try {
      const comm = Deno.readTextFileSync(`/proc/self/task/${t.name}/comm`).trim().replace(/[0-9]+$/, "#");
      const stat = Deno.readTextFileSync(`/proc/self/task/${t.name}/stat`);
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out[comm] = (out[comm] ?? 0) + (Number(f[11]) + Number(f[12])) / 100;
    } catch { /* thread ended */ }
  }
  return out;
}

/** Line-delimited JSON over a child's stdin/stdout: one request, one reply line. */
class ChildLink {
  readonly child: Deno.ChildProcess;
  readonly #reader: ReadableStreamDefaultReader<string>;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  #buf = "";
  constructor(child: Deno.ChildProcess) {
    this.child = child;
    this.#reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    this.#writer = child.stdin.getWriter();
  }
  async line<T>(timeoutMs: number): Promise<T> {
    const deadline = performance.now() + timeoutMs;
    while (!this.#buf.includes("\n")) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const r = await Promise.race([
        this.#reader.read(),
        new Promise<never>((_, rej) =>
          timer = setTimeout(
            () => rej(new Error(`child ${this.child.pid}: no reply in ${timeoutMs} ms`)),
            Math.max(0, deadline - performance.now()),
          )
        ),
      ]).finally(() => clearTimeout(timer));
      if (r.done) throw new Error(`child ${this.child.pid} exited`);
      this.#buf += r.value;
    }
    const i = this.#buf.indexOf("\n");
    const l = this.#buf.slice(0, i);
    this.#buf = this.#buf.slice(i + 1);
    return JSON.parse(l);
  }
  /** Copy everything the child prints from now on to `out` (its replies are no longer read). */
  drainTo(out: { writeSync(p: Uint8Array): number }): void {
    const enc = new TextEncoder();
    if (this.#buf) out.writeSync(enc.encode(this.#buf));
    this.#buf = "";
    (async () => {
      for (;;) {
        const r = await this.#reader.read().catch(() => ({ done: true, value: undefined }));
        if (r.done) return;
        out.writeSync(enc.encode(r.value));
      }
    })();
  }
  async ask<T>(msg: unknown, timeoutMs: number): Promise<T> {
    await this.#writer.write(new TextEncoder().encode(JSON.stringify(msg) + "\n"));
    return await this.line<T>(timeoutMs);
  }
}

/**
 * `cpus` (a taskset list): the child and every thread it makes run only there (exec'd, same pid). `niceness`
 * > 0: it runs at that much lower priority than this process (`nice -n`).
 */
function spawnSelf(args: string[], cpus = "", niceness = 0, v8Flags = ""): Deno.ChildProcess {
  const cmd = [
    Deno.execPath(),
    "run",
    "-A",
    ...(v8Flags ? [`--v8-flags=${v8Flags}`] : []),
    new URL(import.meta.url).pathname,
    ...args,
  ];
  if (cpus) cmd.unshift("taskset", "-c", cpus);
  if (niceness > 0) cmd.unshift("nice", "-n", String(niceness));
  return new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
}

// ---------------------------------------------------------------- origin

/**
 * A variant of how listeners are sent Opus: a room profile (`full`, `fanout`), `speech` (SPEECH_OPUS) or explicit offer parameters
 * (`maxplaybackrate=16000;ptime=60`, applied to each offer before the room sees it, on a `full` room).
 */
/**
 * werift clients' SRTP offer: `aes-cm` (default) as the libwebrtc listeners here negotiate, or `any` (werift's
 * default, AEAD_AES_128_GCM preferred, as browsers that enable GCM would get).
 */
const CLIENT_SRTP = (arg("client-srtp", "aes-cm") === "any" ? "any" : "aes-cm") as "aes-cm" | "any";

/** Cumulative bucket counts of one histogram in this process's /metrics (every worker's series summed). */
function bucketCounts(name: string): Map<number, number> {
  const m = new Map<number, number>();
  for (const line of registry.render().split("\n")) {
    if (!line.startsWith(`${name}_bucket{`)) continue;
    const le = line.match(/le="([^"]+)"/)?.[1];
    const k = le === "+Inf" ? Infinity : Number(le);
    m.set(k, (m.get(k) ?? 0) + Number(line.slice(line.lastIndexOf(" ") + 1)));
  }
  return m;
}

/** The upper bound (ms) of the bucket holding quantile q of what was observed between two bucketCounts. */
function bucketQuantileMs(now: Map<number, number>, before: Map<number, number>, q: number): number | null {
  const les = [...now.keys()].sort((a, b) => a - b);
  const total = (now.get(Infinity) ?? 0) - (before.get(Infinity) ?? 0);
  if (total <= 0) return null;
  for (const le of les) {
    if ((now.get(le) ?? 0) - (before.get(le) ?? 0) >= q * total) return le * 1000;
  }
  return null;
}

/** A figure for the log line (a percentile of no samples arrives as null through JSON). */
const fixed = (v: number | null | undefined, digits = 1) => Number.isFinite(v) ? v!.toFixed(digits) : "-";

function parseVariant(
  variant: string,
): {
  profile: RoomAudioProfile;
  params?: OpusSendParams;
  realtime: boolean;
  forwardWorkers?: number;
  playoutMs?: number;
  niceBoost?: number;
} {
  // `:pN` sets the forward workers' playout delay to N ms (0: send on arrival), `:nN` their thread's nice
  // boost (0: none); default the origin's.
  const [rest, ...opts] = variant.split(":");
  const opt = (k: string) => {
    const o = opts.find((x) => x.startsWith(k));
    if (o === undefined) return undefined;
    const v = Number(o.slice(1));
    if (!(Number.isInteger(v) && v >= 0)) throw new Error(`bad :${o} in ${JSON.stringify(variant)}`);
    return v;
  };
  const playoutMs = opt("p"), niceBoost = opt("n");
  // `@N` runs a shared room's listener peers in N forward workers (0: in the origin's main isolate).
  const [head, workers] = rest.split("@");
  const forwardWorkers = workers === undefined ? undefined : Number(workers);
  if (forwardWorkers !== undefined && !(Number.isInteger(forwardWorkers) && forwardWorkers >= 0)) {
    throw new Error(`bad forward worker count in ${JSON.stringify(variant)}`);
  }
  // `+rt` keeps libwebrtc's real-time send threads (the rooms demote them by default).
  const realtime = head.endsWith("+rt");
  const spec = realtime ? head.slice(0, -3) : head;
  return { ...parseOpusVariant(spec), realtime, forwardWorkers, playoutMs, niceBoost };
}

function parseOpusVariant(spec: string): { profile: RoomAudioProfile; params?: OpusSendParams } {
  if ((ROOM_AUDIO_PROFILES as readonly string[]).includes(spec)) return { profile: spec as RoomAudioProfile };
  if (spec === "speech") return { profile: "full", params: SPEECH_OPUS };
  const params: Record<string, number> = {};
  for (const kv of spec.split(/[;,]/).filter(Boolean)) {
    const [k, v] = kv.split("=");
    if (!k || !Number.isFinite(Number(v))) throw new Error(`bad variant ${JSON.stringify(spec)}`);
    params[k] = Number(v);
  }
  return { profile: "full", params: params as OpusSendParams };
}

function serve(port: number, variant: string): void {
  configureLogging({ level: (Deno.env.get("BENCH_LOG_LEVEL") ?? "error") as "error" });
  const { profile, params, realtime, forwardWorkers, playoutMs, niceBoost } = parseVariant(variant);
  const speech = readWav(new URL("../tests/fixtures/speech/one_phrase_48k.wav", import.meta.url)).samples;
  // With stopped client hosts (--live-every) the liveness checks must wait for them: a long ICE grace.
  const graceMs = Number(arg("grace-ms", "0"));
  const manager = new RoomManager({
    recordGaps: true,
    maxRooms: 1,
    demoteThreads: !realtime,
    forward: { workers: forwardWorkers, playoutMs, niceBoost },
    ...(graceMs ? { listenerConfig: { iceDisconnectedGraceMs: graceMs } } : {}),
  });
  const room = manager.create(
    "bench",
    { maxListeners: 2000, idleAfterMs: 60_000, defaultSource: "speaker", audioProfile: profile },
    {
      track: new BackingTrack("speech", speech),
    },
  );
  const feed = room.attachPublisher({ sessionId: "bench-publisher" });
  // The publisher session's own outbound audio, paced by the same clock, tapped into the room (`voice`).
  const realSource = new RTCAudioSource();
  const track = realSource.createTrack();
  const tapped = {
    createTrack: () => track,
    onData: (d: RTCAudioData) => {
      realSource.onData(d);
      feed.onOutboundFrame(d.samples);
    },
  };
  const outbound = new PacedOutboundAudio({ source: tapped, now: () => performance.now(), recordGaps: true });
  outbound.start();
  let pos = 0, t = 0;
  const mic = new Int16Array(FRAME_SAMPLES);
  const micTick = () => {
    for (let i = 0; i < FRAME_SAMPLES; i++) {
      mic[i] = speech[pos];
      pos = (pos + 1) % speech.length;
    }
    feed.onInboundFrame({ samples: mic, sampleRate: 48_000, timestampMs: t, receivedAt: performance.now() });
    t += 10;
    if (outbound.queuedMs() < 500) outbound.enqueue(`u${t}`, speech);
  };
  frameClock.add(micTick);

  // Forward workers (shared rooms): main posted a tick's packets → the worker handles them; its timer lag.
  const DELAY = "parley_room_forward_packet_delay_seconds", LAG = "parley_room_forward_worker_lag_seconds";
  const PLAYOUT = "parley_room_forward_playout_lateness_seconds";
  let mark = {
    at: performance.now(),
    cpu: cpuSeconds(),
    threads: cpuByThread(),
    ticks: 0,
    delay: bucketCounts(DELAY),
    lag: bucketCounts(LAG),
    playout: bucketCounts(PLAYOUT),
  };
  const tickTimes: number[] = [];
  const origTick = room.controller.tick.bind(room.controller);
  room.controller.tick = () => {
    const t0 = performance.now();
    origTick();
    tickTimes.push(performance.now() - t0);
  };
  const reset = () => {
    if (outbound.gapsMs) outbound.gapsMs.length = 0;
    for (const l of room.listeners()) {
      if (l.gapsMs) l.gapsMs.length = 0;
      l.onDataMs = l.onDataMaxMs = 0;
      l.frames = 0;
    }
    tickTimes.length = 0;
    mark = {
      at: performance.now(),
      cpu: cpuSeconds(),
      threads: cpuByThread(),
      ticks: room.controller.ticks,
      delay: bucketCounts(DELAY),
      lag: bucketCounts(LAG),
      playout: bucketCounts(PLAYOUT),
    };
  };
  const stats = () => {
    const wall = (performance.now() - mark.at) / 1000;
    const threads = cpuByThread();
    const byThread: Record<string, number> = {};
    for (const [k, v] of Object.entries(threads)) {
      const d = (v - (mark.threads[k] ?? 0)) / wall;
      if (d >= 0.005) byThread[k] = Number(d.toFixed(3));
    }
    const send: number[] = [];
    let onDataMs = 0, onDataMaxMs = 0, frames = 0;
    for (const l of room.listeners()) {
      send.push(...(l.gapsMs ?? []));
      onDataMs += l.onDataMs;
      frames += l.frames;
      onDataMaxMs = Math.max(onDataMaxMs, l.onDataMaxMs);
    }
    return {
      listeners: room.listenerCount,
      cores: (cpuSeconds() - mark.cpu) / wall,
      byThread,
      pacing: summarize(outbound.gapsMs ?? []),
      send: summarize(send),
      tick: summarize(tickTimes),
      onDataAvgMs: onDataMs / Math.max(1, frames),
      onDataMaxMs,
      wallS: wall,
      listenerSeconds: frames / 100,
      loadavg: Deno.readTextFileSync("/proc/loadavg").split(" ")[0],
      proc: procStats(),
      forward: (() => {
        const delay = bucketCounts(DELAY), lag = bucketCounts(LAG), playout = bucketCounts(PLAYOUT);
        return {
          delayP50Ms: bucketQuantileMs(delay, mark.delay, 0.5),
          delayP99Ms: bucketQuantileMs(delay, mark.delay, 0.99),
          lagP99Ms: bucketQuantileMs(lag, mark.lag, 0.99),
          playoutLateP99Ms: bucketQuantileMs(playout, mark.playout, 0.99),
        };
      })(),
    };
  };
  const server = Deno.serve({ hostname: "0.0.0.0", port, onListen: () => {} }, async (req) => {
    const u = new URL(req.url);
    try {
      if (req.method === "POST" && u.pathname === "/listeners") {
        const offer = await req.text();
        const { listener, answer } = await room.addListener(params ? shapeOpusOffer(offer, params) : offer, {
          source: "speaker",
        });
        return Response.json({ id: listener.id, sdp: answer }, { status: 201 });
      }
      const m = u.pathname.match(/^\/listeners\/([0-9a-f-]+)$/);
      if (req.method === "DELETE" && m) return Response.json({ removed: room.removeListener(m[1]) });
      if (req.method === "POST" && u.pathname === "/reset") {
        reset();
        return Response.json({ ok: true });
      }
      if (req.method === "GET" && u.pathname === "/stats") return Response.json(stats());
      return new Response("not found", { status: 404 });
    } catch (err) {
      const status = (err as { status?: number }).status ?? 500;
      return Response.json({ error: String(err) }, { status });
    }
  });
  const stop = () =>
    exitCleanly(async () => {
      frameClock.remove(micTick);
      outbound.close();
      track.stop();
      await manager.close();
      await server.shutdown();
    }, 0);
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  console.log(JSON.stringify({ port: (server.addr as Deno.NetAddr).port, pid: Deno.pid }));
}

// ---------------------------------------------------------------- client host

/** Receive gaps kept as a histogram of 0.1 ms bins (mergeable across hosts). */
type GapHist = Record<string, number>;

interface JoinRequest {
  cmd: "join";
  n: number;
  concurrency: number;
  timeoutMs: number;
  deadlineMs: number;
}
interface JoinReply {
  listeners: number;
  added: number;
  failures: Record<string, number>;
  setupMs: Record<string, number>;
}
interface CollectReply {
  hist: GapHist;
  frames: number;
  /** Listeners whose received audio had speech energy during the window. */
  hearing: number;
  rssMiB: number;
}

/** What a client host's listeners are: wrtc (libwebrtc's whole receive path) or werift packet counters. */
type ClientKind = "wrtc" | "werift";
type BenchClient = ListenerClient | PacketListenerClient;

async function clientHost(base: string, kind: ClientKind): Promise<void> {
  configureLogging({ level: "error" });
  // werift's SCTP client can reject a promise nobody awaits (a duplicate INIT-ACK while it sends its
  // COOKIE-ECHO: "timer1Start"): count it in the host instead of losing the host's 25 listeners. (The origin
  // is always the SCTP server under ICE lite and never takes that path.)
  let rejections = 0;
  globalThis.addEventListener("unhandledrejection", (e) => {
    e.preventDefault();
    if (++rejections <= 3) console.error(`client host ${Deno.pid}: unhandled rejection ${e.reason}`);
  });
  const clients: BenchClient[] = [];
  let loudAtReset: number[] = [];
  const out = (v: unknown) => Deno.stdout.writeSync(new TextEncoder().encode(JSON.stringify(v) + "\n"));
  const http = async (method: string, path: string, timeoutMs: number, body?: string) => {
    const res = await fetch(base + path, { method, body, signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    if (!res.ok) throw new Error(`${res.status} ${text.slice(0, 120)}`);
    return JSON.parse(text);
  };
  /** One listener: offer → POST → answer → audio arriving, within timeoutMs; failures name their stage. */
  const join = async (timeoutMs: number): Promise<number> => {
    const t0 = performance.now();
    // werift clients: one in five decodes its audio for the energy check, the rest count packets.
    const c: BenchClient = kind === "werift"
      ? new PacketListenerClient({ decode: clients.length % 5 === 0, srtp: CLIENT_SRTP })
      : new ListenerClient({ keepFrames: false });
    let stage = "offer", id: string | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        (async () => {
          const offer = await c.offer();
          stage = "post";
          const r = await http("POST", "/listeners", timeoutMs, offer);
          id = r.id;
          stage = "answer";
          await c.accept(r.sdp);
          stage = "audio";
          await c.waitFor(() => c.receivedFrames > 5, timeoutMs, "audio");
        })(),
        new Promise<never>((_, rej) => timer = setTimeout(() => rej(new Error("timeout")), timeoutMs)),
      ]);
      clients.push(c);
      return performance.now() - t0;
    } catch (err) {
      c.close();
      if (id) http("DELETE", `/listeners/${id}`, 5000).catch(() => {});
      const why = String((err as Error).message ?? err).split("\n")[0].slice(0, 60);
      throw new Error(`${stage}: ${why.startsWith("timeout") ? "timeout" : why}`);
    } finally {
      clearTimeout(timer);
    }
  };
  const reader = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  out({ ready: true, pid: Deno.pid });
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let i: number;
    while ((i = buf.indexOf("\n")) >= 0) {
      const msg = JSON.parse(buf.slice(0, i));
      buf = buf.slice(i + 1);
      if (msg.cmd === "join") {
        const req = msg as JoinRequest;
        const target = clients.length + req.n;
        const failures: Record<string, number> = {};
        const setup: number[] = [];
        const deadline = performance.now() + req.deadlineMs;
        let failed = 0, inflight = 0;
        const verbose = Deno.env.get("ROOMS_BENCH_VERBOSE") === "1";
        const beat = verbose
          ? setInterval(() =>
            console.error(
              `host ${Deno.pid}: ${clients.length}/${target} joined, ${inflight} in flight, ${failed} failed`,
            ), 5000)
          : undefined;
        // Bounded concurrency: `concurrency` joins in flight; stop launching at the deadline or after too
        // many failures (a saturated origin refuses or times out every further join).
        await Promise.all(Array.from({ length: Math.min(req.concurrency, req.n) }, async () => {
          while (
            clients.length + inflight < target && performance.now() < deadline &&
            failed < Math.max(10, req.n / 5)
          ) {
            inflight++;
            try {
              setup.push(await join(req.timeoutMs));
            } catch (err) {
              failed++;
              const k = (err as Error).message;
              failures[k] = (failures[k] ?? 0) + 1;
            } finally {
              inflight--;
            }
          }
        }));
        clearInterval(beat);
        out(
          {
            listeners: clients.length,
            added: setup.length,
            failures,
            setupMs: summarize(setup),
          } satisfies JoinReply,
        );
      } else if (msg.cmd === "reset") {
        for (const c of clients) c.gapsMs.length = 0;
        loudAtReset = clients.map((c) => c.loudFrames);
        out({ ok: true });
      } else if (msg.cmd === "collect") {
        const hist: GapHist = {};
        let frames = 0;
        for (const c of clients) {
          for (const g of c.gapsMs) {
            const k = String(Math.round(g * 10));
            hist[k] = (hist[k] ?? 0) + 1;
          }
          frames += c.gapsMs.length;
        }
        // Sinks keep firing (silence) after the origin dropped a listener: count who still hears the voice.
        const hearing = clients.filter((c, i) => c.loudFrames > (loudAtReset[i] ?? 0)).length;
        out({ hist, frames, hearing, rssMiB: procStats().rssKiB / 1024 } satisfies CollectReply);
      } else if (msg.cmd === "close") {
        await exitCleanly(() => {
          for (const c of clients) c.close();
          return Promise.resolve();
        }, 0);
      }
    }
  }
  await exitCleanly(() => {
    for (const c of clients) c.close();
    return Promise.resolve();
  }, 0);
}

function histSummary(h: GapHist): { n: number; p50: number; p99: number; max: number } {
  const bins = Object.entries(h).map(([k, v]) => [Number(k) / 10, v] as const).sort((a, b) => a[0] - b[0]);
  const n = bins.reduce((a, [, v]) => a + v, 0);
  const at = (q: number) => {
    let acc = 0;
    for (const [g, v] of bins) {
      acc += v;
      if (acc >= q * n) return g;
    }
    return NaN;
  };
  return { n, p50: at(0.5), p99: at(0.99), max: bins.at(-1)?.[0] ?? NaN };
}

// ---------------------------------------------------------------- driver

type Stats = {
  listeners: number;
  cores: number;
  byThread: Record<string, number>;
  pacing: Record<string, number>;
  send: Record<string, number>;
  tick: Record<string, number>;
  onDataAvgMs: number;
  onDataMaxMs: number;
  /** Measurement window (s) and audio handed to listeners in it (listener-seconds). */
  wallS: number;
  listenerSeconds: number;
  loadavg: string;
  proc: { threads: number; fds: number; rssKiB: number };
  /** Shared rooms in forward workers (null: no worker ran in the window). */
  forward?: {
    delayP50Ms: number | null;
    delayP99Ms: number | null;
    lagP99Ms: number | null;
    playoutLateP99Ms?: number | null;
  };
};

interface Row {
  variant: string;
  n: number;
  reached: number;
  failures: Record<string, number>;
  joinS: number;
  s: Stats;
  recv: ReturnType<typeof histSummary>;
  clientCores: number;
  /** Listeners hearing the voice in the window (origin alive and sending), of the `sampled` ones measured. */
  hearing: number;
  sampled: number;
  load: string;
}

/** `perf record` the origin for `seconds`; the top of its profile by library and by function. */
async function perfOrigin(pid: number, seconds: number, tag: string): Promise<string> {
  const data = `/tmp/parley-rooms-perf-${Deno.pid}-${tag.replace(/[^a-z0-9]+/gi, "_")}.data`;
  const rec = await new Deno.Command("perf", {
    args: ["record", "-F", "499", "-p", String(pid), "-o", data, "--", "sleep", String(seconds)],
    stdout: "null",
    stderr: "piped",
  }).output().catch((err) => ({ success: false, stderr: new TextEncoder().encode(String(err)) }));
  if (!rec.success) return `perf record failed: ${new TextDecoder().decode(rec.stderr).slice(0, 200)}`;
  const report = async (sort: string, lines: number) => {
    const r = await new Deno.Command("perf", {
      args: ["report", "-i", data, "--stdio", "--no-children", "--sort", sort, "--percent-limit", "0.7"],
      stdout: "piped",
      stderr: "null",
    }).output();
    return new TextDecoder().decode(r.stdout).split("\n").filter((l) => l.trim() && !l.startsWith("#"))
      .slice(0, lines).join("\n");
  };
  const text = `by library:\n${await report("dso", 12)}\nby function:\n${await report("dso,sym", 40)}`;
  await Deno.remove(data).catch(() => {});
  return text;
}

async function runVariant(variant: string, steps: number[], opts: {
  seconds: number;
  settle: number;
  perClient: number;
  concurrency: number;
  joinTimeoutMs: number;
  stepDeadlineS: number;
  perfStep: number;
  remote: string;
  clientKind: ClientKind;
  pin: boolean;
  clientNice: number;
  liveEvery: number;
  originV8Flags: string;
}): Promise<Row[]> {
  let originChild: Deno.ChildProcess | undefined;
  let base = opts.remote;
  if (!base) {
    const grace = opts.liveEvery > 1 ? ["--grace-ms", "600000"] : [];
    originChild = spawnSelf(
      ["--serve", "--port", "0", "--variant", variant, ...grace],
      opts.pin ? "0" : "",
      0,
      opts.originV8Flags,
    );
    const link = new ChildLink(originChild);
    const ready = await link.line<{ port: number }>(60_000);
    base = `http://127.0.0.1:${ready.port}`;
    // Whatever the origin prints later (V8's --trace-gc, say) goes to stderr: an unread pipe would block it.
    link.drainTo(Deno.stderr);
  }
  const http = async (method: string, path: string) => {
    const res = await fetch(base + path, { method, signal: AbortSignal.timeout(30_000) });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return JSON.parse(text);
  };
  /** `live: false` hosts are stopped (SIGSTOP) during each window: their listeners stay joined, unread. */
  const hosts: Array<{ link: ChildLink; listeners: number; live: boolean }> = [];
  const rows: Row[] = [];
  const gone = new Set<number>();
  const clientCpu = () =>
    hosts.reduce((a, h) => {
      const pid = h.link.child.pid;
      try {
        return a + cpuSeconds(pid);
      } catch {
        // A client host that died (its listeners with it) must not end the run: say so, count what is left.
        if (!gone.has(pid)) {
          console.log(`  client host ${pid} is gone (its ${h.listeners} listeners with it)`);
        }
        gone.add(pid);
        return a;
      }
    }, 0);
  try {
    for (const n of steps) {
      const tj = performance.now();
      const failures: Record<string, number> = {};
      const total = () => hosts.reduce((a, h) => a + h.listeners, 0);
      const deadline = tj + opts.stepDeadlineS * 1000;
      let stalled = false;
      while (total() < n && performance.now() < deadline && !stalled) {
        // Every batch goes to a fresh client host: a host whose listeners were already receiving was seen to
        // stop answering while it joined more (its JS thread stuck in wrtc), so hosts are filled once.
        const child = spawnSelf(
          ["--clients", base, "--client-kind", opts.clientKind, "--client-srtp", CLIENT_SRTP],
          opts.pin ? "1" : "",
          opts.clientNice,
        );
        const host = { link: new ChildLink(child), listeners: 0, live: hosts.length % opts.liveEvery === 0 };
        hosts.push(host);
        await host.link.line(60_000);
        const want = Math.min(n - total(), opts.perClient);
        let r: JoinReply;
        try {
          r = await host.link.ask<JoinReply>(
            {
              cmd: "join",
              n: want,
              concurrency: opts.concurrency,
              timeoutMs: opts.joinTimeoutMs,
              deadlineMs: Math.max(1000, deadline - performance.now()),
            } satisfies JoinRequest,
            Math.max(1000, deadline - performance.now()) + 2 * opts.joinTimeoutMs,
          );
        } catch (err) {
          // A client host that stopped answering (its event loop starved or stuck in wrtc): count its
          // listeners as lost, end it, and end the step.
          const k = `client host: ${(err as Error).message.replace(/child \d+: /, "")}`;
          failures[k] = (failures[k] ?? 0) + host.listeners + want;
          try {
            host.link.child.kill("SIGKILL");
          } catch { /* exited */ }
          hosts.splice(hosts.indexOf(host), 1);
          stalled = true;
          break;
        }
        host.listeners = r.listeners;
        // A muted host stays stopped from its join on: its listeners cost the client core nothing.
        if (!host.live) Deno.kill(host.link.child.pid, "SIGSTOP");
        for (const [k, v] of Object.entries(r.failures)) failures[k] = (failures[k] ?? 0) + v;
        if (r.added < want) stalled = true;
      }
      const reached = total();
      const joinS = (performance.now() - tj) / 1000;
      console.log(
        `  [${variant}] ${reached}/${n} listeners joined (${joinS.toFixed(1)} s)${
          Object.keys(failures).length ? `; failures ${JSON.stringify(failures)}` : ""
        }`,
      );
      await new Promise((r) => setTimeout(r, opts.settle * 1000));
      await http("POST", "/reset");
      const live = hosts.filter((h) => h.live);
      await Promise.all(live.map((h) => h.link.ask({ cmd: "reset" }, 30_000).catch(() => {})));
      const cpu0 = clientCpu(), w0 = performance.now();
      const perf = opts.perfStep === n && originChild
        ? perfOrigin(originChild.pid, opts.seconds, `${variant}-${n}`)
        : undefined;
      await new Promise((r) => setTimeout(r, opts.seconds * 1000));
      const clientCores = (clientCpu() - cpu0) / ((performance.now() - w0) / 1000);
      let s: Stats;
      try {
        s = await http("GET", "/stats");
      } catch (err) {
        // An origin too starved to answer its stats request: the step failed; report it and stop stepping.
        console.log(`  [${variant}] ${reached} listeners: origin did not answer /stats (${err}); stopping`);
        break;
      }
      const replies = await Promise.all(
        live.map((h) =>
          h.link.ask<CollectReply>({ cmd: "collect" }, 60_000).catch((): CollectReply => ({
            hist: {},
            frames: 0,
            hearing: 0,
            rssMiB: NaN,
          }))
        ),
      );
      const hist: GapHist = {};
      for (const r of replies) for (const [k, v] of Object.entries(r.hist)) hist[k] = (hist[k] ?? 0) + v;
      const recv = histSummary(hist);
      const hearing = replies.reduce((a, r) => a + r.hearing, 0);
      const sampled = live.reduce((a, h) => a + h.listeners, 0);
      const row = {
        variant,
        n,
        reached,
        failures,
        joinS,
        s,
        recv,
        clientCores,
        hearing,
        sampled,
        load: loadavg(),
      };
      rows.push(row);
      console.log(
        `  [${variant}] ${reached} listeners: origin ${s.cores.toFixed(2)} cores (threads ${
          JSON.stringify(s.byThread)
        }), clients ${clientCores.toFixed(2)} cores in ${hosts.length} processes; pacing p99 ${
          fixed(s.pacing.p99)
        } ms; send gap p99 ${fixed(s.send.p99)}; receive gap p99 ${fixed(recv.p99)} ms (n ${recv.n}); ` +
          `${s.listeners} live at the origin, ${hearing} of ${sampled} sampled hearing speech; tick p99 ${
            fixed(s.tick.p99, 2)
          } ms; forward worker delay p50/p99 ${fixed(s.forward?.delayP50Ms)}/${
            fixed(s.forward?.delayP99Ms)
          } ms, timer lag p99 ${fixed(s.forward?.lagP99Ms)} ms, playout lateness p99 ${
            fixed(s.forward?.playoutLateP99Ms)
          } ms; onData per listener frame avg ${
            s.onDataAvgMs.toFixed(3)
          } ms; origin threads ${s.proc.threads}, RSS ${
            (s.proc.rssKiB / 1024).toFixed(0)
          } MiB; load ${row.load}`,
      );
      if (perf) console.log(`  [${variant}] origin perf profile at ${reached} listeners:\n${await perf}`);
      if (reached < n) {
        console.log(`  [${variant}] stopping: could not reach ${n} listeners`);
        break;
      }
    }
  } finally {
    await Promise.all(hosts.map(async (h) => {
      if (!h.live) {
        try {
          Deno.kill(h.link.child.pid, "SIGCONT");
        } catch { /* exited */ }
      }
      await h.link.ask({ cmd: "close" }, 5_000).catch(() => {});
      try {
        h.link.child.kill("SIGKILL");
      } catch { /* exited */ }
      await h.link.child.status;
    }));
    if (originChild) {
      originChild.kill("SIGTERM");
      const t = setTimeout(() => originChild.kill("SIGKILL"), 15_000);
      await originChild.status;
      clearTimeout(t);
    }
  }
  return rows;
}

async function main(): Promise<void> {
  configureLogging({ level: "error" });
  const steps = arg("steps", "50,100,200,300,500").split(",").map(Number);
  const variants = arg("variants", "full").split(",").filter(Boolean);
  const opts = {
    seconds: Number(arg("seconds", "8")),
    settle: Number(arg("settle", "3")),
    perClient: Number(arg("per-client", "25")),
    concurrency: Number(arg("join-concurrency", "8")),
    joinTimeoutMs: Number(arg("join-timeout-ms", "20000")),
    stepDeadlineS: Number(arg("step-deadline-s", "240")),
    perfStep: Number(arg("perf-step", "0")),
    remote: arg("origin", ""),
    clientKind: arg("client-kind", "wrtc") as ClientKind,
    pin: Deno.args.includes("--pin"),
    clientNice: Number(arg("client-nice", "0")),
    liveEvery: Math.max(1, Number(arg("live-every", "1"))),
    originV8Flags: arg("origin-v8-flags", ""),
  };
  if (!["wrtc", "werift"].includes(opts.clientKind)) throw new Error(`--client-kind wrtc|werift`);
  console.log(
    `rooms bench: 1 room, listeners stepping ${steps.join("/")}, ${opts.seconds} s per step, variants ${
      variants.join(" | ")
    }; ≤ ${opts.perClient} listeners per client process; load average ${loadavg()} on ${navigator.hardwareConcurrency} cores`,
  );
  const rows: Row[] = [];
  for (const v of variants) rows.push(...await runVariant(v, steps, opts));
  const f = (v: number) => Number.isFinite(v) ? v.toFixed(1) : "-";
  const enc = (s: Stats) => s.byThread["AudioEncoder"] ?? 0;
  // A step counts only if every listener joined, is still live at the origin and hears the voice.
  const ok = (r: Row) =>
    r.reached === r.n && r.s.listeners === r.n && r.hearing === r.sampled && r.recv.p99 <= 40 &&
    r.s.pacing.p99 <= 20;
  // CPU per unit of work done (ms per second of audio handed to one listener): on a contended machine the
  // origin falls behind and does less work, so cores alone understate its cost.
  const perLs = (s: Stats, cores: number) =>
    s.listenerSeconds > 0 ? (1000 * cores * s.wallS / s.listenerSeconds).toFixed(1) : "-";
  console.log(
    "\n| variant | listeners | live at origin / hearing of sampled | origin cores | origin CPU ms per listener·s | AudioEncoder ms per listener·s | client cores | publisher pacing p99 ms | send gap p99 ms | receive gap p99 ms | receive max ms | tick p99 ms | origin threads | RSS MiB | load |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const r of rows) {
    const meets = ok(r);
    console.log(
      `| ${r.variant} | ${r.reached === r.n ? r.n : `${r.reached} of ${r.n}`}${
        meets ? " ✓" : ""
      } | ${r.s.listeners} / ${r.hearing} of ${r.sampled} | ${r.s.cores.toFixed(2)} | ${
        perLs(r.s, r.s.cores)
      } | ${perLs(r.s, enc(r.s))} | ${r.clientCores.toFixed(2)} | ${f(r.s.pacing.p99)} | ${
        f(r.s.send.p99)
      } | ${f(r.recv.p99)} | ${f(r.recv.max)} | ${r.s.tick.p99.toFixed(2)} | ${r.s.proc.threads} | ${
        (r.s.proc.rssKiB / 1024).toFixed(0)
      } | ${r.load.split(" ")[0]} |`,
    );
  }
  for (const v of variants) {
    const good = rows.filter((r) => r.variant === v && ok(r)).map((r) => r.n);
    const short = rows.filter((r) => r.variant === v && r.reached < r.n)
      .map((r) =>
        `${r.n}: reached ${r.reached} (${
          Object.keys(r.failures).length ? JSON.stringify(r.failures) : "step deadline, joins too slow"
        })`
      );
    console.log(
      `[${v}] largest count with every listener live and hearing, receive gap p99 ≤ 40 ms, publisher pacing p99 ≤ 20 ms: ${
        good.length ? Math.max(...good) : "none"
      } (goal ≥ 300)${short.length ? `; not reached: ${short.join("; ")}` : ""}`,
    );
  }
  await exitCleanly(() => Promise.resolve(), 0);
}

if (import.meta.main) {
  if (Deno.args.includes("--serve")) serve(Number(arg("port", "8097")), arg("variant", "full"));
  else if (Deno.args.includes("--clients")) {
    await clientHost(arg("clients", ""), arg("client-kind", "wrtc") as ClientKind);
  } else await main();
}
