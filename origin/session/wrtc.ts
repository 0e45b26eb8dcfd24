/**
 * The single import point of @roamhq/wrtc in Parley. Everything else imports the WebRTC classes from here.
 *
 * Facts this module encodes (see ../../../shared/STACK-NOTES.md, "@roamhq/wrtc in Deno"):
 * - The library drops its shared native factory when the LAST peer connection closes and builds a new one for
 *   the next peer; Deno never frees the old one (+4 threads, +8 fds per session, forever). `ensureKeepalive()`
 *   keeps one idle RTCPeerConnection referenced from `globalThis` for the life of the process, so the factory
 *   is built once. Call it before creating the first peer (the SessionManager and the test helpers do).
 * - A process that had a connected peer segfaults when it ends on its own: close everything, then
 *   `Deno.exit(0)` (see `exitCleanly`).
 * - wrtc must live in ONE isolate (the main one): never import this module from a Worker.
 * - Needs `--allow-ffi` (without it the library misreports a missing binary).
 *
 * The package's own type declarations re-export DOM globals that Deno's lib does not declare, so the small
 * structural types below describe exactly the surface Parley uses.
 */
import wrtcModule from "@roamhq/wrtc";

export interface WrtcEventTarget {
  addEventListener(type: string, listener: (ev: unknown) => void): void;
  removeEventListener(type: string, listener: (ev: unknown) => void): void;
}

export interface MediaStreamTrack {
  readonly kind: string;
  readonly id: string;
  readonly readyState: "live" | "ended";
  enabled: boolean;
  stop(): void;
}

export interface RTCDataChannel {
  readonly label: string;
  readonly readyState: "connecting" | "open" | "closing" | "closed";
  readonly bufferedAmount: number;
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  send(data: string | Uint8Array): void;
  close(): void;
}

export interface SessionDescription {
  type: "offer" | "answer" | "pranswer" | "rollback";
  sdp: string;
}

export interface RTCRtpSender {
  readonly track: MediaStreamTrack | null;
  replaceTrack(track: MediaStreamTrack | null): Promise<void>;
}

export interface RTCRtpTransceiver {
  readonly mid: string | null;
  readonly sender: RTCRtpSender;
  readonly receiver: { readonly track: MediaStreamTrack };
  direction: string;
  stop?(): void;
}

export type PeerConnectionState = "new" | "connecting" | "connected" | "disconnected" | "failed" | "closed";
export type IceConnectionState =
  | "new"
  | "checking"
  | "connected"
  | "completed"
  | "disconnected"
  | "failed"
  | "closed";

export interface RTCPeerConnection {
  readonly connectionState: PeerConnectionState;
  readonly iceConnectionState: IceConnectionState;
  readonly iceGatheringState: "new" | "gathering" | "complete";
  readonly signalingState: string;
  readonly localDescription: SessionDescription | null;
  onconnectionstatechange: ((ev: unknown) => void) | null;
  oniceconnectionstatechange: ((ev: unknown) => void) | null;
  onicegatheringstatechange: ((ev: unknown) => void) | null;
  onicecandidate: ((ev: unknown) => void) | null;
  ondatachannel: ((ev: { channel: RTCDataChannel }) => void) | null;
  ontrack: ((ev: { track: MediaStreamTrack; transceiver: RTCRtpTransceiver }) => void) | null;
  createOffer(): Promise<SessionDescription>;
  createAnswer(): Promise<SessionDescription>;
  setLocalDescription(desc: SessionDescription): Promise<void>;
  setRemoteDescription(desc: SessionDescription): Promise<void>;
  createDataChannel(label: string, init?: Record<string, unknown>): RTCDataChannel;
  addTrack(track: MediaStreamTrack, ...streams: unknown[]): RTCRtpSender;
  addTransceiver(kind: string, init?: Record<string, unknown>): RTCRtpTransceiver;
  getTransceivers(): RTCRtpTransceiver[];
  /** Standard stats reports (inbound-rtp, outbound-rtp, …), each a plain object with a `type`. */
  getStats(): Promise<{ forEach(cb: (report: Record<string, unknown>) => void): void }>;
  close(): void;
}

export interface RTCAudioData {
  samples: Int16Array;
  sampleRate: number;
  bitsPerSample?: number;
  channelCount?: number;
  numberOfFrames?: number;
}

export interface RTCAudioSource {
  createTrack(): MediaStreamTrack;
  onData(data: RTCAudioData): void;
}

export interface RTCAudioSink {
  readonly stopped: boolean;
  ondata: ((data: RTCAudioData) => void) | null;
  stop(): void;
}

interface WrtcModule {
  RTCPeerConnection: new (config?: Record<string, unknown>) => RTCPeerConnection;
  MediaStream: new (tracks?: MediaStreamTrack[]) => unknown;
  nonstandard: {
    RTCAudioSource: new () => RTCAudioSource;
    RTCAudioSink: new (track: MediaStreamTrack) => RTCAudioSink;
  };
}

const wrtc = wrtcModule as unknown as WrtcModule;

export const RTCPeerConnection = wrtc.RTCPeerConnection;
export const MediaStream = wrtc.MediaStream;
export const RTCAudioSource = wrtc.nonstandard.RTCAudioSource;
export const RTCAudioSink = wrtc.nonstandard.RTCAudioSink;

/** Peer configuration for Parley: no STUN/TURN, host candidates only (origin and client on reachable networks). */
export const PEER_CONFIG: Record<string, unknown> = { iceServers: [] };

const KEEPALIVE_KEY = Symbol.for("parley.wrtc.keepalivePeer");

/**
 * Keep one idle RTCPeerConnection referenced from globalThis for the life of the process (see header). Idempotent.
 * It is never connected, so it does not count toward the exit segfault.
 */
export function ensureKeepalive(): void {
  const g = globalThis as unknown as Record<symbol, unknown>;
  if (!g[KEEPALIVE_KEY]) g[KEEPALIVE_KEY] = new RTCPeerConnection(PEER_CONFIG);
}

/** Wait until the peer has gathered all its (host) candidates, or the timeout elapses. */
export function waitIceGathering(pc: RTCPeerConnection, timeoutMs: number): Promise<boolean> {
  if (pc.iceGatheringState === "complete") return Promise.resolve(true);
  return new Promise((resolve) => {
    const prev = pc.onicegatheringstatechange;
    const done = (ok: boolean) => {
      clearTimeout(timer);
      pc.onicegatheringstatechange = prev;
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    pc.onicegatheringstatechange = (ev) => {
      prev?.(ev);
      if (pc.iceGatheringState === "complete") done(true);
    };
  });
}

/**
 * Release a peer at the end of its owner's close: handlers off first (so the close events that follow are not
 * taken for the remote side hanging up), then the data channels, then the peer connection. Never throws.
 */
export function closePeer(
  pc: RTCPeerConnection | undefined,
  channels: Array<RTCDataChannel | undefined>,
): void {
  for (const ch of channels) {
    if (!ch) continue;
    ch.onopen =
      ch.onclose =
      ch.onerror =
      ch.onmessage =
        null;
    try {
      ch.close();
    } catch { /* already closed */ }
  }
  if (!pc) return;
  pc.ondatachannel =
    pc.ontrack =
    pc.onconnectionstatechange =
    pc.oniceconnectionstatechange =
      null;
  try {
    pc.close();
  } catch { /* already closed */ }
}

/**
 * End a process that used wrtc: run `cleanup` (close every session), give native threads a moment, then
 * `Deno.exit(code)` explicitly (a natural exit after a connected peer segfaults).
 */
export async function exitCleanly(cleanup: () => Promise<void>, code = 0): Promise<never> {
  try {
    await cleanup();
  } catch (err) {
    console.error("cleanup before exit failed:", err);
    code = code || 1;
  }
  await new Promise((r) => setTimeout(r, 50));
  Deno.exit(code);
}
