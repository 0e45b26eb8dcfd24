import assert from "node:assert/strict";
import { DtlsSocket } from "werift";
import { applyWeriftDtlsFix } from "./werift_dtls_fix.ts";

interface Ctx {
  handshakeCache: Record<number, { data: Array<{ msg_type: number }> }>;
  bufferHandshakeCache(
    h: Array<{ msg_type: number; message_seq?: number }>,
    isLocal: boolean,
    flight: number,
  ): void;
}

function context(): Ctx {
  const s = new DtlsSocket(
    { transport: { onData: undefined, send: () => Promise.resolve(), close: () => {} } } as never,
    1 as never,
  ) as unknown as { dtls: Ctx };
  return s.dtls;
}

Deno.test("werift DTLS fix: a repeated ClientKeyExchange is cached once and not handled again", () => {
  applyWeriftDtlsFix();
  applyWeriftDtlsFix(); // idempotent: the prototype is wrapped once
  const ctx = context();
  const first = { msg_type: 16, message_seq: 1 };
  ctx.bufferHandshakeCache([{ msg_type: 11, message_seq: 0 }, first], false, 5);
  assert.equal(first.msg_type, 16, "the first copy is handled");
  const again = { msg_type: 16, message_seq: 1 };
  ctx.bufferHandshakeCache([again], false, 5);
  assert.equal(again.msg_type, 255, "the repeat is made unrecognisable to the key-deriving handler");
  assert.deepEqual(ctx.handshakeCache[5].data.map((h) => h.msg_type), [11, 16], "cache as werift keeps it");
  // Other messages, local ones and other flights are untouched.
  const cert = { msg_type: 11 };
  ctx.bufferHandshakeCache([cert], false, 5);
  assert.equal(cert.msg_type, 11);
  const local = { msg_type: 16 };
  ctx.bufferHandshakeCache([local], true, 5);
  assert.equal(local.msg_type, 16);
  // A new handshake context (renegotiation) derives keys again.
  const fresh = context();
  const cke = { msg_type: 16 };
  fresh.bufferHandshakeCache([cke], false, 5);
  assert.equal(cke.msg_type, 16);
});
