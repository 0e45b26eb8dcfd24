/**
 * Room fan-out: does sharing ONE RTCAudioSource (one track on every listener's sender) cost the origin's main
 * thread less than one source per listener? The room controller hands every listener a frame per 10 ms tick
 * and each frame goes through `RTCAudioSource.onData` on the JS thread; this measures that call at each
 * listener count, both ways, with real wrtc listeners (recvonly peers) on loopback:
 *
 *   - private: N sources, one per listener's sender (what origin/rooms/listener.ts does), N onData per tick
 *   - shared:  1 source whose track is on all N senders, 1 onData per tick
 *
 * For each it reports the JS-thread wall time per tick spent in onData (p50, p99; on a loaded machine this
 * includes time the thread was descheduled), the tick gap p99 (the 10 ms loop's own pacing), the CPU of the
 * JS thread and of the whole process (the clients' decoders included), and the listeners' receive gap p99. It also measures
 * `RTCRtpSender.replaceTrack` (how a listener would move between shared program tracks): the call's time on
 * the JS thread and how long until the listener hears the new track.
 *
 *   deno run -A bench/rooms_fanout.ts [--steps 50,100] [--seconds 5]
 *
 * Clients and origin share this process (the clients' Opus decoding runs on wrtc's own threads; their sink
 * callbacks on this JS thread are outside the timed onData calls).
 */
import { configureLogging } from "../lib/log.ts";
import { ListenerClient, Tone } from "../origin/rooms/test_listener.ts";
import { cpuSeconds, procStats } from "../origin/session/proc_stats.ts";
import {
  closePeer,
  ensureKeepalive,
  exitCleanly,
  type MediaStreamTrack,
  PEER_CONFIG,
  RTCAudioSource,
  type RTCAudioSource as AudioSource,
  type RTCPeerConnection,
  RTCPeerConnection as PeerConnection,
  type RTCRtpSender,
  waitIceGathering,
} from "../origin/session/wrtc.ts";
import { summarize } from "./churn.ts";

function arg(name: string, dflt: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : dflt;
}

const MARK_A = 500, MARK_B = 1100;

interface Peer {
  client: ListenerClient;
  pc: RTCPeerConnection;
  sender: RTCRtpSender;
  own: { source: AudioSource; track: MediaStreamTrack };
}

async function connect(track: MediaStreamTrack): Promise<Peer> {
  const client = new ListenerClient({ markers: [MARK_A, MARK_B] });
  const offer = await client.offer();
  const pc = new PeerConnection(PEER_CONFIG);
  await pc.setRemoteDescription({ type: "offer", sdp: offer });
  const sender = pc.addTrack(track);
  await pc.setLocalDescription(await pc.createAnswer());
  await waitIceGathering(pc, 3000);
  await client.accept(pc.localDescription!.sdp);
  const source = new RTCAudioSource();
  return { client, pc, sender, own: { source, track: source.createTrack() } };
}

const frame = (samples: Int16Array) => ({
  samples,
  sampleRate: 48_000,
  bitsPerSample: 16,
  channelCount: 1,
  numberOfFrames: 480,
});

/** CPU seconds of this process's main (JS) thread. */
function mainThreadCpu(): number {
  const stat = Deno.readTextFileSync(`/proc/self/task/${Deno.pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** Drive `feed` from a drift-corrected 10 ms loop for `seconds`; time each call. */
async function drive(feed: () => void, seconds: number) {
  const onDataMs: number[] = [], gaps: number[] = [];
  const t0 = performance.now(), cpu0 = cpuSeconds(), main0 = mainThreadCpu();
  let n = 0, last = 0;
  await new Promise<void>((done) => {
    const step = () => {
      const now = performance.now();
      if (last) gaps.push(now - last);
      last = now;
      const t = performance.now();
      feed();
      onDataMs.push(performance.now() - t);
      n++;
      if (now - t0 >= seconds * 1000) return done();
      setTimeout(step, Math.max(0, t0 + n * 10 - performance.now()));
    };
    step();
  });
  const wall = (performance.now() - t0) / 1000;
  return {
    onData: summarize(onDataMs),
    gaps: summarize(gaps),
    cores: (cpuSeconds() - cpu0) / wall,
    mainCores: (mainThreadCpu() - main0) / wall,
  };
}

async function main(): Promise<void> {
  configureLogging({ level: "error" });
  ensureKeepalive();
  const steps = arg("steps", "50,100").split(",").map(Number);
  const seconds = Number(arg("seconds", "5"));
  console.log(
    `rooms fan-out: private vs shared RTCAudioSource, ${steps.join("/")} listeners, ${seconds} s each; load ${
      Deno.readTextFileSync("/proc/loadavg").split(" ")[0]
    } on ${navigator.hardwareConcurrency} cores`,
  );
  const shared = new RTCAudioSource(), sharedTrack = shared.createTrack();
  const other = new RTCAudioSource(), otherTrack = other.createTrack();
  const peers: Peer[] = [];
  const rows: string[] = [];
  const toneA = new Tone(MARK_A), toneB = new Tone(MARK_B);
  try {
    for (const n of steps) {
      while (peers.length < n) {
        peers.push(
          ...await Promise.all(
            Array.from({ length: Math.min(10, n - peers.length) }, () => connect(sharedTrack)),
          ),
        );
      }
      // private: every sender on its own source
      for (const p of peers) await p.sender.replaceTrack(p.own.track);
      await drive(() => {
        const f = frame(toneA.next());
        for (const p of peers) p.own.source.onData(f);
      }, 1);
      for (const p of peers) p.client.gapsMs.length = 0;
      const priv = await drive(() => {
        const f = frame(toneA.next());
        for (const p of peers) p.own.source.onData(f);
      }, seconds);
      const privRecv = summarize(peers.flatMap((p) => p.client.gapsMs));
      // shared: every sender on one source (replaceTrack timed: the cost of moving N listeners at once)
      const r0 = performance.now();
      const pending = peers.map((p) => p.sender.replaceTrack(sharedTrack));
      const replaceSync = performance.now() - r0;
      await Promise.all(pending);
      await drive(() => shared.onData(frame(toneA.next())), 1);
      for (const p of peers) p.client.gapsMs.length = 0;
      const sh = await drive(() => shared.onData(frame(toneA.next())), seconds);
      const shRecv = summarize(peers.flatMap((p) => p.client.gapsMs));
      // replaceTrack onto a second shared track playing another tone: when does each listener hear it?
      const movedAt = performance.now();
      for (const p of peers) p.sender.replaceTrack(otherTrack);
      const heardAfter: number[] = [];
      await drive(() => {
        shared.onData(frame(toneA.next()));
        other.onData(frame(toneB.next()));
      }, 2);
      for (const p of peers) {
        const f = p.client.firstTone(1, movedAt);
        if (f) heardAfter.push(f.at - movedAt);
      }
      const moved = summarize(heardAfter);
      for (const p of peers) await p.sender.replaceTrack(sharedTrack);
      const proc = procStats();
      const line = (what: string, d: Awaited<ReturnType<typeof drive>>, recv: Record<string, number>) =>
        `| ${n} | ${what} | ${d.onData.p50.toFixed(2)} | ${d.onData.p99.toFixed(2)} | ${
          (d.onData.p50 / n).toFixed(3)
        } | ${d.gaps.p99.toFixed(1)} | ${d.mainCores.toFixed(2)} | ${d.cores.toFixed(2)} | ${
          recv.p99.toFixed(1)
        } | ${proc.threads} |`;
      rows.push(line("private (1 source per listener)", priv, privRecv));
      rows.push(line("shared (1 source, N senders)", sh, shRecv));
      console.log(rows.at(-2));
      console.log(rows.at(-1));
      console.log(
        `  replaceTrack × ${n}: ${replaceSync.toFixed(1)} ms on the JS thread (${
          (replaceSync / n).toFixed(2)
        } ms each); new track heard after p50 ${moved.p50.toFixed(0)} ms, max ${
          moved.max.toFixed(0)
        } ms (${heardAfter.length}/${n} heard it within 2 s)`,
      );
    }
    console.log(
      "\n| listeners | fan-out | onData per tick p50 ms | p99 ms | per listener ms | tick gap p99 ms | JS thread cores | process cores | receive gap p99 ms | threads |",
    );
    console.log("|---|---|---|---|---|---|---|---|---|---|");
    for (const r of rows) console.log(r);
  } finally {
    await exitCleanly(() => {
      for (const p of peers) {
        p.client.close();
        closePeer(p.pc, []);
        p.own.track.stop();
      }
      sharedTrack.stop();
      otherTrack.stop();
      return Promise.resolve();
    }, 0);
  }
}

if (import.meta.main) await main();
