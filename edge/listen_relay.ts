/**
 * The edge's half of a `/v1/listen` stream: one client WebSocket relayed to one origin WebSocket, without
 * looking into the audio. The edge owns three rules here, the origin all others:
 *
 * - client frames wait (at most MAX_PENDING_BYTES) until the origin's first event says the session is live;
 * - a client frame larger than MAX_FRAME_BYTES is refused here (1009) and never crosses to the origin;
 * - backpressure on a slow client: past SLOW_CLIENT_SOFT_BYTES unsent, partial transcripts are dropped (a
 *   later partial or the confirmed result supersedes them); confirmed results, other events and audio are
 *   never dropped; past SLOW_CLIENT_HARD_BYTES the stream is closed (1008).
 *
 * Close codes travel both ways as they are; a lost origin connection (1005/1006) becomes 1011 for the client.
 * `close()` is idempotent and closes both sockets.
 */
import { registry } from "../lib/metrics.ts";
import type { Logger } from "../lib/log.ts";
import {
  closeReason,
  isPartialTranscript,
  LISTEN_CLOSE,
  MAX_FRAME_BYTES,
  MAX_PENDING_BYTES,
  SLOW_CLIENT_HARD_BYTES,
  SLOW_CLIENT_SOFT_BYTES,
} from "../protocol/listen.ts";

const dropped = registry.counter(
  "parley_edge_listen_dropped_partials_total",
  "Partial transcripts not relayed to a slow /v1/listen client",
);
const relayed = registry.counter(
  "parley_edge_listen_frames_total",
  "Frames relayed on /v1/listen, by direction",
);
const closes = registry.counter("parley_edge_listen_closes_total", "/v1/listen streams closed, by code");

export class ListenRelay {
  #origin: WebSocket | undefined;
  #live = false;
  #pending: Array<string | ArrayBuffer> = [];
  #pendingBytes = 0;
  #closed = false;
  /** Events received from the origin (the relay treats the first as "session started"). */
  originMessages = 0;
  droppedPartials = 0;
  readonly #onEnd: (code: number, startedOk: boolean) => void;

  constructor(
    readonly client: WebSocket,
    readonly log: Logger,
    onEnd: (code: number, startedOk: boolean) => void,
  ) {
    this.#onEnd = onEnd;
    client.binaryType = "arraybuffer";
    client.onmessage = (ev) => this.#fromClient(ev.data);
    client.onclose = (ev) => this.close(ev.code === 1005 ? 1000 : ev.code, ev.reason || "client closed");
    client.onerror = () => {};
  }

  /** Attach the origin socket (already created; may still be connecting). */
  attach(origin: WebSocket): void {
    if (this.#closed) {
      origin.onopen = () => origin.close(1000, "client gone");
      return;
    }
    this.#origin = origin;
    origin.binaryType = "arraybuffer";
    origin.onmessage = (ev) => this.#fromOrigin(ev.data);
    origin.onclose = (ev) => {
      const code = ev.code === 1005 || ev.code === 1006 ? LISTEN_CLOSE.internal : ev.code;
      this.close(code, ev.reason || "origin connection lost");
    };
    origin.onerror = () => {};
  }

  #fromClient(data: string | ArrayBuffer): void {
    if (this.#closed) return;
    const size = typeof data === "string" ? data.length : data.byteLength;
    if (size > MAX_FRAME_BYTES) {
      this.close(LISTEN_CLOSE.tooBig, `frame of ${size} bytes; at most ${MAX_FRAME_BYTES}`);
      return;
    }
    relayed.inc({ direction: "in" });
    if (this.#live && this.#origin?.readyState === WebSocket.OPEN) {
      this.#origin.send(data);
      return;
    }
    this.#pendingBytes += size;
    if (this.#pendingBytes > MAX_PENDING_BYTES) {
      this.close(LISTEN_CLOSE.policy, `more than ${MAX_PENDING_BYTES} bytes sent before the session started`);
      return;
    }
    this.#pending.push(data);
  }

  #fromOrigin(data: string | ArrayBuffer): void {
    if (this.#closed) return;
    this.originMessages++;
    if (!this.#live) {
      this.#live = true;
      for (const d of this.#pending) this.#origin!.send(d);
      this.#pending = [];
      this.#pendingBytes = 0;
    }
    const c = this.client;
    if (c.readyState !== WebSocket.OPEN) return;
    const buffered = c.bufferedAmount;
    if (buffered > SLOW_CLIENT_HARD_BYTES) {
      this.close(LISTEN_CLOSE.policy, `client too slow: ${buffered} bytes unread`);
      return;
    }
    if (buffered > SLOW_CLIENT_SOFT_BYTES && typeof data === "string" && isPartialTranscript(data)) {
      this.droppedPartials++;
      dropped.inc();
      return;
    }
    relayed.inc({ direction: "out" });
    c.send(data);
  }

  /** Close both sides with one code and reason. Idempotent. */
  close(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    closes.inc({ code: String(code) });
    const r = closeReason(reason);
    for (const ws of [this.client, this.#origin]) {
      if (!ws) continue;
      ws.onmessage = ws.onclose = null;
      try {
        if (ws.readyState === WebSocket.OPEN) ws.close(code, r);
        else if (ws.readyState === WebSocket.CONNECTING) ws.onopen = () => ws.close(code, r);
      } catch (err) {
        // Codes a peer may receive but not send (1005/1006/1015) end up here: close plainly.
        this.log.debug("close with code failed", { code, err: String(err) });
        try {
          ws.close(1000, r);
        } catch { /* gone */ }
      }
    }
    this.#pending = [];
    this.#onEnd(code, this.originMessages > 0);
  }
}
