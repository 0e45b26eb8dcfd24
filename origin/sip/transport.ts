/**
 * SIP transport: one UDP socket and one TCP listener on the same port (node:dgram and node:net, which work
 * in Deno without `--unstable-net`; Deno.listenDatagram needs it). TCP is framed by Content-Length (mandatory
 * on streams); a connection that sends an unframeable or oversized message is closed. Responses go back to
 * the source address and port (RFC 3581 symmetric response) or on the same TCP connection.
 */
import dgram from "node:dgram";
import net from "node:net";
import { Buffer } from "node:buffer";
import { bytesToText, MAX_MESSAGE_BYTES } from "./message.ts";
import type { SipPeer } from "./sip_types.ts";

export interface SipTransportOptions {
  host: string;
  /** 0 picks a free port (the same one for UDP and TCP). */
  port: number;
  /** Idle TCP connections are closed after this long. */
  tcpIdleMs?: number;
  maxTcpConnections?: number;
}

export type SipDatagramHandler = (bytes: Uint8Array, peer: SipPeer) => void;

export class SipTransport {
  #udp?: dgram.Socket;
  #tcp?: net.Server;
  readonly #conns = new Map<number, net.Socket>();
  #nextConnId = 1;
  #closed = false;
  #port = 0;
  constructor(private readonly opts: SipTransportOptions, private readonly onMessage: SipDatagramHandler) {}

  get port(): number {
    return this.#port;
  }
  get connectionCount(): number {
    return this.#conns.size;
  }

  async listen(): Promise<void> {
    // Bind TCP first when the port is 0, then UDP on the same number; retry a few times if UDP is taken.
    for (let attempt = 0; attempt < 10; attempt++) {
      const tcp = net.createServer((s) => this.#accept(s));
      const tcpPort = await new Promise<number>((resolve, reject) => {
        tcp.once("error", reject);
        tcp.listen(this.opts.port, this.opts.host, () => resolve((tcp.address() as net.AddressInfo).port));
      });
      const udp = dgram.createSocket("udp4");
      const ok = await new Promise<boolean>((resolve) => {
        udp.once("error", () => resolve(false));
        udp.bind(tcpPort, this.opts.host, () => resolve(true));
      });
      if (ok) {
        udp.on("message", (msg: Buffer, rinfo: dgram.RemoteInfo) => {
          if (this.#closed) return;
          this.onMessage(new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength), {
            transport: "udp",
            address: rinfo.address,
            port: rinfo.port,
          });
        });
        udp.on("error", () => {});
        this.#udp = udp;
        this.#tcp = tcp;
        this.#port = tcpPort;
        return;
      }
      udp.close();
      await new Promise<void>((r) => tcp.close(() => r()));
      if (this.opts.port !== 0) throw new Error(`UDP port ${this.opts.port} is in use`);
    }
    throw new Error("could not bind UDP and TCP on one port");
  }

  #accept(sock: net.Socket): void {
    if (this.#closed || this.#conns.size >= (this.opts.maxTcpConnections ?? 1000)) {
      sock.destroy();
      return;
    }
    const id = this.#nextConnId++;
    this.#conns.set(id, sock);
    sock.setTimeout(this.opts.tcpIdleMs ?? 120_000, () => sock.destroy());
    sock.on("error", () => {});
    sock.on("close", () => this.#conns.delete(id));
    let buf = "";
    const peer: SipPeer = {
      transport: "tcp",
      address: sock.remoteAddress ?? "",
      port: sock.remotePort ?? 0,
      connectionId: id,
    };
    sock.on("data", (chunk: Buffer) => {
      buf += bytesToText(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      for (;;) {
        // Keep-alive CRLFs between messages (RFC 5626) are skipped.
        const lead = buf.match(/^(\r\n)+/);
        if (lead) buf = buf.slice(lead[0].length);
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) {
          if (buf.length > MAX_MESSAGE_BYTES) sock.destroy();
          return;
        }
        const m = buf.slice(0, end).match(/\r\n(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*)/i);
        const clText = m ? m[1].trim() : "0";
        if (!/^\d{1,9}$/.test(clText)) {
          // Cannot find the next message boundary: give the message to the parser for a 400, then close.
          this.onMessage(new Uint8Array(0), peer);
          sock.destroy();
          return;
        }
        const total = end + 4 + Number(clText);
        if (total > MAX_MESSAGE_BYTES) {
          const head = buf.slice(0, end + 4);
          // The headers alone let the UAS answer 513; the connection then closes (the body cannot be skipped).
          this.onMessage(textBytesOversized(head), peer);
          sock.destroy();
          return;
        }
        if (buf.length < total) return;
        const one = buf.slice(0, total);
        buf = buf.slice(total);
        this.onMessage(latin1(one), peer);
      }
    });
  }

  /** Sends to a peer; on TCP, over its connection if still open, otherwise a new connection. */
  send(bytes: Uint8Array, peer: SipPeer): void {
    if (this.#closed) return;
    if (peer.transport === "udp") {
      this.#udp?.send(bytes, peer.port, peer.address);
      return;
    }
    const existing = peer.connectionId !== undefined ? this.#conns.get(peer.connectionId) : undefined;
    if (existing && !existing.destroyed) {
      existing.write(bytes);
      return;
    }
    for (const s of this.#conns.values()) {
      if (s.remoteAddress === peer.address && s.remotePort === peer.port && !s.destroyed) {
        s.write(bytes);
        return;
      }
    }
    const s = net.connect(peer.port, peer.address);
    s.on("error", () => {});
    s.once("connect", () => {
      // Outbound connections also carry requests the remote sends back (responses to our BYE).
      this.#accept(s);
    });
    s.write(bytes);
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    for (const s of this.#conns.values()) s.destroy();
    this.#conns.clear();
    const waits: Promise<void>[] = [];
    if (this.#udp) waits.push(new Promise((r) => this.#udp!.close(() => r())));
    if (this.#tcp) waits.push(new Promise((r) => this.#tcp!.close(() => r())));
    return Promise.all(waits).then(() => {});
  }
}

function latin1(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** Marks a header block whose declared body is too large: the parser sees a length over the limit. */
function textBytesOversized(head: string): Uint8Array {
  const out = new Uint8Array(MAX_MESSAGE_BYTES + 1);
  out.set(latin1(head));
  return out;
}
