/**
 * A workaround for werift's DTLS server (0.25.2), applied once per process before the first shared-room
 * listener negotiates.
 *
 * When the client retransmits its flight 5 (Certificate, ClientKeyExchange, CertificateVerify, Finished) before
 * werift has answered the first copy — libwebrtc retransmits after ~50 ms, and a loaded origin answers later —
 * werift handles the repeated ClientKeyExchange again and derives the master secret again. With the extended
 * master secret (RFC 7627, which libwebrtc always uses) that secret hashes the handshake messages cached so far,
 * and by then the cache also holds the first copy's CertificateVerify and Finished: the keys change, the
 * client's records no longer authenticate, and the listener never connects (measured: 2–16 % of joins at 10
 * concurrent joins on a loaded machine, every failed session had this sequence in werift's debug log).
 *
 * The fix: a ClientKeyExchange that is already in the handshake cache is still deduplicated there as werift
 * does, and is then made unrecognisable to the flight-6 handler (its message type cleared), so the keys are
 * derived once per handshake. A renegotiation starts a new context and cache, so it derives them again.
 */
import { DtlsSocket } from "werift";

const CLIENT_KEY_EXCHANGE = 16;
const CLIENT_FLIGHT = 5;
/** No handshake type has this value (RFC 5246 stops at 20; DTLS adds 3 and 254 is unassigned). */
const IGNORED_TYPE = 255;

interface HandshakeLike {
  msg_type: number;
}
interface DtlsContextLike {
  handshakeCache: Record<number, { data: HandshakeLike[] }>;
  bufferHandshakeCache(handshakes: HandshakeLike[], isLocal: boolean, flight: number): void;
}

let applied = false;

export function applyWeriftDtlsFix(): void {
  if (applied) return;
  applied = true;
  // DtlsContext is not exported: reach its prototype through a socket that is never used.
  const probe = new DtlsSocket(
    { transport: { onData: undefined, send: () => Promise.resolve(), close: () => {} } } as never,
    1 as never,
  ) as unknown as { dtls: DtlsContextLike };
  const proto = Object.getPrototypeOf(probe.dtls) as DtlsContextLike;
  const original = proto.bufferHandshakeCache;
  if (typeof original !== "function") throw new Error("werift DtlsContext.bufferHandshakeCache not found");
  proto.bufferHandshakeCache = function (this: DtlsContextLike, handshakes, isLocal, flight) {
    const cached = this.handshakeCache[flight]?.data ?? [];
    const repeats = !isLocal && flight === CLIENT_FLIGHT
      ? handshakes.filter((h) =>
        h.msg_type === CLIENT_KEY_EXCHANGE && cached.some((c) => c.msg_type === CLIENT_KEY_EXCHANGE)
      )
      : [];
    original.call(this, handshakes, isLocal, flight);
    for (const h of repeats) h.msg_type = IGNORED_TYPE;
  };
}
