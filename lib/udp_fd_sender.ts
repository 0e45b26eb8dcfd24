/**
 * Sends datagrams with sendto(2) through FFI on the file descriptor of a UDP socket that Deno opened, found by
 * its local port: a werift peer's host-candidate socket (room listeners) or a call's RTP socket (the SIP RTP
 * worker). A `node:dgram` send in Deno is an asynchronous op with ~12 µs of CPU and ~1.7 KB of garbage per
 * datagram (docs/benchmarks.md), and the datagram leaves after the JavaScript turn that sent it, not at the
 * call. sendto on the same descriptor is one synchronous syscall with a buffer the caller may reuse: the packet
 * is in the kernel when the call returns, from the same address and port, so the peer sees nothing different.
 *
 * The descriptor stays Deno's: the sender must not be used after the socket is closed (its owner drops it
 * before closing the socket, or a reused descriptor number would get the datagram). A full socket buffer
 * (EAGAIN) drops the datagram, as UDP does. Linux only; without FFI permission or libc the lookup returns null
 * and callers keep `node:dgram`.
 */

interface Libc {
  symbols: {
    sendto(
      fd: number,
      buf: Uint8Array,
      len: number,
      flags: number,
      addr: Uint8Array,
      alen: number,
    ): number | bigint;
  };
}

let libc: Libc | null | undefined;

function loadLibc(): Libc | null {
  if (libc !== undefined) return libc;
  try {
    libc = Deno.build.os === "linux"
      ? Deno.dlopen("libc.so.6", {
        sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
      }) as unknown as Libc
      : null;
  } catch {
    libc = null;
  }
  return libc;
}

const MSG_DONTWAIT = 0x40;

/**
 * The descriptor of this process's IPv4 UDP socket bound to `port` (and to `host` when given: another socket
 * may hold the same port on another address), or null (not found, not Linux, no FFI).
 */
export function udpFdOfPort(port: number, host?: string): number | null {
  if (!loadLibc()) return null;
  try {
    // /proc/net/udp writes the local address as the u32 in host (little-endian) order, then the port.
    const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
    const ip = host?.split(".").map(Number);
    const hexHost = ip?.length === 4
      ? ip.reverse().map((b) => b.toString(16).toUpperCase().padStart(2, "0")).join("")
      : undefined;
    const local = hexHost ? `${hexHost}:${hexPort}` : `:${hexPort}`;
    let inode: string | null = null;
    for (const line of Deno.readTextFileSync("/proc/self/net/udp").split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[1]?.endsWith(local)) {
        inode = f[9];
        break;
      }
    }
    if (!inode) return null;
    const target = `socket:[${inode}]`;
    for (const e of Deno.readDirSync("/proc/self/fd")) {
      try {
        if (Deno.readLinkSync(`/proc/self/fd/${e.name}`) === target) return Number(e.name);
      } catch { /* closed meanwhile */ }
    }
  } catch { /* no /proc or no read permission */ }
  return null;
}

export class UdpFdSender {
  readonly fd: number;
  readonly #addr = new Uint8Array(16);
  readonly #libc: Libc;
  #host = "";
  #port = -1;
  #aimed = false;
  /** Datagrams the kernel refused (full buffer, gone peer). */
  failed = 0;

  /** With a destination, aimed at it (not IPv4: throws); without, call aim() before sending. */
  constructor(fd: number, host?: string, port?: number) {
    const l = loadLibc();
    if (!l) throw new Error("sendto through FFI is not available");
    this.#libc = l;
    this.fd = fd;
    if (host !== undefined && !this.aim(host, port ?? 0)) throw new Error(`not an IPv4 address: ${host}`);
  }

  get host(): string {
    return this.#host;
  }
  get port(): number {
    return this.#port;
  }

  /**
   * Send to `host:port` from now on; false when that is not an IPv4 address (send nothing there). The same
   * destination again costs two comparisons, so a caller may aim before every send at where it must go.
   */
  aim(host: string, port: number): boolean {
    if (host === this.#host && port === this.#port) return this.#aimed;
    this.#host = host;
    this.#port = port;
    const ip = host.split(".").map(Number);
    this.#aimed = ip.length === 4 && ip.every((b) => b >= 0 && b <= 255);
    if (this.#aimed) {
      // struct sockaddr_in: family (host order), port (network order), address, zero padding.
      new DataView(this.#addr.buffer).setUint16(0, 2, true);
      new DataView(this.#addr.buffer).setUint16(2, port, false);
      this.#addr.set(ip, 4);
    }
    return this.#aimed;
  }

  /** One datagram, the first `length` bytes of `buf`; false when the kernel refused it. */
  send(buf: Uint8Array, length = buf.length): boolean {
    if (!this.#aimed) throw new Error("UdpFdSender has no IPv4 destination");
    if (length > buf.length) throw new RangeError(`length ${length} exceeds the buffer (${buf.length})`);
    // The pointer and the length go to the call as they are: no view object per datagram.
    const rc = this.#libc.symbols.sendto(this.fd, buf, length, MSG_DONTWAIT, this.#addr, 16);
    if (Number(rc) < 0) {
      this.failed++;
      return false;
    }
    return true;
  }
}
