/**
 * Sends datagrams with sendto(2) through FFI on the file descriptor of a UDP socket that Deno opened, found by
 * its local address: a werift peer's host-candidate socket (room listeners) or a call's RTP socket (the SIP RTP
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
    getsockname(fd: number, addr: Uint8Array, alen: Uint8Array): number;
    getsockopt(fd: number, level: number, name: number, value: Uint8Array, vlen: Uint8Array): number;
  };
}

let libc: Libc | null | undefined;

function loadLibc(): Libc | null {
  if (libc !== undefined) return libc;
  try {
    libc = Deno.build.os === "linux"
      ? Deno.dlopen("libc.so.6", {
        sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
        getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
        getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
      }) as unknown as Libc
      : null;
  } catch {
    libc = null;
  }
  return libc;
}

const MSG_DONTWAIT = 0x40;

const AF_INET = 2, SOL_SOCKET = 1, SO_TYPE = 3, SOCK_DGRAM = 2;

/**
 * The descriptor of this process's IPv4 UDP socket bound to `port` (and to `host` when given: another socket
 * may hold the same port on another address), or null (not found, not Linux, no FFI).
 *
 * Each descriptor number below the table's size (FDSize in /proc/self/status) is asked for its local address
 * (getsockname(2)), highest first, where a socket just opened usually is. Reading /proc/self/net/udp and every descriptor's link instead cost 11 ms per lookup
 * with 1,000 sockets open, on the thread that also sends every listener's packets.
 */
export function udpFdOfPort(port: number, host?: string): number | null {
  const l = loadLibc();
  if (!l) return null;
  const ip = host?.split(".").map(Number);
  const want = ip?.length === 4 && ip.every((b) => Number.isInteger(b) && b >= 0 && b <= 255) ? ip : null;
  // The descriptor table's size bounds the numbers in use; numbers not open fail at once (EBADF).
  let size: number;
  try {
    size = Number(/^FDSize:\s*(\d+)/m.exec(Deno.readTextFileSync("/proc/self/status"))?.[1]);
  } catch {
    return null; // no /proc or no read permission
  }
  if (!Number.isInteger(size) || size <= 0) return null;
  const addr = new Uint8Array(16), value = new Uint8Array(4), len = new Uint8Array(4);
  const lenView = new DataView(len.buffer), addrView = new DataView(addr.buffer);
  for (let fd = size - 1; fd >= 0; fd--) {
    lenView.setUint32(0, addr.length, true);
    if (l.symbols.getsockname(fd, addr, len) !== 0) continue; // not a socket, or closed meanwhile
    if (addrView.getUint16(0, true) !== AF_INET || addrView.getUint16(2, false) !== port) continue;
    if (want && !want.every((b, i) => addr[4 + i] === b)) continue;
    lenView.setUint32(0, value.length, true);
    if (l.symbols.getsockopt(fd, SOL_SOCKET, SO_TYPE, value, len) !== 0) continue;
    if (new DataView(value.buffer).getInt32(0, true) === SOCK_DGRAM) return fd;
  }
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
