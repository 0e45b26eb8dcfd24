/** Helpers for SIP tests: a UAS on 127.0.0.1, free ports, SIPp runs, process fd/thread counts. */
import { SipUas, type SipUasOptions } from "../uas.ts";
import type { SipApplication } from "../sip_types.ts";
import net from "node:net";
import dgram from "node:dgram";
import { RtpWorker } from "../rtp_worker_host.ts";
import { RtpSession, type RtpSessionOptions } from "../rtp_session.ts";
import type { PortAllocator } from "../port_allocator.ts";

export const SIPP_DIR = new URL("./sipp/", import.meta.url).pathname;

/** An RTP range per test process, away from other engineers' tests on the shared machine. */
export function rtpRange(offset = 0): { rtpPortMin: number; rtpPortMax: number } {
  const base = 30000 + ((Deno.pid * 97 + offset * 400) % 20000);
  const min = base - (base % 2);
  return { rtpPortMin: min, rtpPortMax: min + 399 };
}

export async function startUas(app: SipApplication, opts: Partial<SipUasOptions> = {}): Promise<SipUas> {
  const uas = new SipUas({
    host: "127.0.0.1",
    port: 0,
    app,
    allowAnyone: true,
    timers: { t1: 100, t2: 400, t4: 500 },
    ...rtpRange(),
    ...opts,
  });
  await uas.listen();
  return uas;
}

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

export interface SippResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs one SIPp UAC. Exit 254 (SIPp could not bind a port it picked) is retried with new ports. */
export async function runSipp(
  scenario: string,
  uasPort: number,
  extra: string[] = [],
  transport: "u1" | "t1" = "u1",
): Promise<SippResult> {
  for (let attempt = 0;; attempt++) {
    const r = await runSippOnce(scenario, uasPort, extra, transport);
    if (r.code !== 254 || attempt === 2) return r;
  }
}

async function runSippOnce(
  scenario: string,
  uasPort: number,
  extra: string[],
  transport: "u1" | "t1",
): Promise<SippResult> {
  const localPort = await freePort();
  const mediaPort = (await freePort()) & ~1;
  // SIPp writes its error/trace files into the working directory: a temp one, removed afterwards.
  const cwd = Deno.makeTempDirSync({ prefix: "sipp-" });
  const cmd = new Deno.Command("sipp", {
    args: [
      `127.0.0.1:${uasPort}`,
      "-sf",
      `${SIPP_DIR}${scenario}`,
      "-s",
      "100",
      "-i",
      "127.0.0.1",
      "-p",
      String(localPort),
      "-mi",
      "127.0.0.1",
      "-mp",
      String(mediaPort),
      "-t",
      transport,
      "-nostdin",
      "-timeout",
      "60s",
      "-timeout_error",
      "-m",
      "1",
      ...extra,
    ],
    stdout: "piped",
    stderr: "piped",
    cwd,
  });
  const out = await cmd.output().finally(() => Deno.removeSync(cwd, { recursive: true }));
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

export function countFds(): number {
  return [...Deno.readDirSync("/proc/self/fd")].length;
}

export function countThreads(): number {
  return [...Deno.readDirSync("/proc/self/task")].length;
}

export async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out waiting for condition");
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Fails with SIPp's screen and errors when a scenario did not complete. */
export function sippOk(r: SippResult): void {
  if (r.code !== 0) {
    throw new Error(`sipp exit ${r.code}\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-2000)}`);
  }
}

/** A UDP peer on loopback that keeps every datagram it receives (the far end of a call's RTP). */
export async function udpPeer(): Promise<
  { sock: dgram.Socket; port: number; got: Uint8Array[]; fromPorts: Set<number> }
> {
  const sock = dgram.createSocket("udp4");
  const got: Uint8Array[] = [];
  const fromPorts = new Set<number>();
  sock.on("message", (m, r) => {
    got.push(new Uint8Array(m));
    fromPorts.add(r.port);
  });
  await new Promise<void>((r) => sock.bind(0, "127.0.0.1", () => r()));
  return { sock, port: sock.address().port, got, fromPorts };
}

/** An RTP worker host whose spawned Workers are listed, so a test can kill one behind the host's back. */
export function trackedRtpWorker(deadAfterMs: number): { worker: RtpWorker; spawned: Worker[] } {
  const spawned: Worker[] = [];
  const worker = new RtpWorker({
    deadAfterMs,
    spawn: () => {
      const w = new Worker(new URL("../rtp_worker.ts", import.meta.url), { type: "module", name: "rtp" });
      spawned.push(w);
      return w;
    },
  });
  return { worker, spawned };
}

/** A PCMA (payload type 8) session on a port from `alloc`, talking to a loopback peer; `extra` adds or overrides. */
export async function loopbackRtp(
  alloc: PortAllocator,
  peerPort: number,
  extra: Partial<RtpSessionOptions> = {},
): Promise<RtpSession> {
  return new RtpSession({
    lease: await alloc.allocate(),
    payloadType: 8,
    remoteAddress: "127.0.0.1",
    remotePort: peerPort,
    direction: "sendrecv",
    held: false,
    ...extra,
  });
}
