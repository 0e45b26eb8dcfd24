/**
 * Sends datagrams with sendto(2) through FFI on the file descriptor of a UDP socket that Deno opened (a werift
 * peer's host-candidate socket), found by its local port. A `node:dgram` send in Deno is an asynchronous op
 * with ~12 µs of CPU and ~1.7 KB of garbage per datagram (docs/benchmarks.md); in a shared room that is one
 * send per listener every 20 ms, and the garbage's collection pauses are what delays the packets. sendto on
 * the same descriptor is one synchronous syscall with a buffer the caller reuses: the packets leave from the
 * same address and port, so ICE and the client see nothing different.
 *
 * The descriptor stays Deno's: the sender must not be used after the socket is closed (the listener drops it
 * before closing its peer). A full socket buffer (EAGAIN) drops the datagram, as UDP does. Linux only; without
 * FFI permission or libc the lookup returns null and callers keep `node:dgram`.
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

/** The descriptor of this process's IPv4 UDP socket bound to `port`, or null (not found, not Linux, no FFI). */
export function udpFdOfPort(port: number): number | null {
  if (!loadLibc()) return null;
  try {
    const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
    let inode: string | null = null;
    for (const line of Deno.readTextFileSync("/proc/self/net/udp").split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[1]?.endsWith(`:${hexPort}`)) {
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
  readonly host: string;
  readonly port: number;
  readonly #addr = new Uint8Array(16);
  readonly #libc: Libc;
  /** Datagrams the kernel refused (full buffer, gone peer). */
  failed = 0;

  constructor(fd: number, host: string, port: number) {
    const l = loadLibc();
    if (!l) throw new Error("sendto through FFI is not available");
    const ip = host.split(".").map(Number);
    if (ip.length !== 4 || ip.some((b) => !(b >= 0 && b <= 255))) {
      throw new Error(`not an IPv4 address: ${host}`);
    }
    this.#libc = l;
    this.fd = fd;
    this.host = host;
    this.port = port;
    // struct sockaddr_in: family (host order), port (network order), address, zero padding.
    new DataView(this.#addr.buffer).setUint16(0, 2, true);
    new DataView(this.#addr.buffer).setUint16(2, port, false);
    this.#addr.set(ip, 4);
  }

  /** One datagram, the first `length` bytes of `buf`; false when the kernel refused it. */
  send(buf: Uint8Array, length = buf.length): boolean {
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
