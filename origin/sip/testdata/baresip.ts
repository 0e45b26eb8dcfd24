/**
 * Drives Debian's baresip as a real softphone for tests: a temp config dir (no sound card: aufile plays a WAV
 * as the microphone, sndfile records what it hears to WAV, aubridge stands in for the speaker), controlled
 * through its ctrl_tcp module (netstring JSON commands; call events come back on the same socket).
 */
import { freePort } from "./harness.ts";

export class Baresip {
  readonly dir = Deno.makeTempDirSync({ prefix: "baresip-" });
  readonly recDir = `${this.dir}/rec`;
  readonly events: Array<{ type: string; param?: string }> = [];
  #proc?: Deno.ChildProcess;
  #conn?: Deno.TcpConn;
  #log = "";
  #closed = false;
  #stopped = false;

  constructor(private readonly micWav: string) {}

  get log(): string {
    return this.#log;
  }

  async start(): Promise<void> {
    const ctrl = await freePort();
    const sip = await freePort();
    Deno.mkdirSync(this.recDir);
    Deno.writeTextFileSync(
      `${this.dir}/config`,
      [
        "poll_method epoll",
        `sip_listen 127.0.0.1:${sip}`,
        "audio_player aubridge,nil",
        `audio_source aufile,${this.micWav}`,
        "audio_alert aubridge,nil",
        "module_path /usr/lib/baresip/modules",
        "module g711.so",
        "module aufile.so",
        "module aubridge.so",
        "module sndfile.so",
        "module_app account.so",
        "module_app menu.so",
        "module_app ctrl_tcp.so",
        `ctrl_tcp_listen 127.0.0.1:${ctrl}`,
        `snd_path ${this.recDir}`,
        "",
      ].join("\n"),
    );
    Deno.writeTextFileSync(`${this.dir}/accounts`, "<sip:tester@127.0.0.1>;regint=0;audio_codecs=PCMU\n");
    this.#proc = new Deno.Command("baresip", {
      args: ["-f", this.dir, "-n", "127.0.0.1"],
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    }).spawn();
    void this.#drain(this.#proc.stdout);
    void this.#drain(this.#proc.stderr);
    const end = Date.now() + 5000;
    for (;;) {
      try {
        this.#conn = await Deno.connect({ hostname: "127.0.0.1", port: ctrl });
        break;
      } catch (e) {
        if (Date.now() > end) throw e;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    void this.#readEvents();
  }

  async #drain(s: ReadableStream<Uint8Array>): Promise<void> {
    const dec = new TextDecoder();
    for await (const c of s) this.#log = (this.#log + dec.decode(c, { stream: true })).slice(-20000);
  }

  async #readEvents(): Promise<void> {
    let buf = "";
    const b = new Uint8Array(8192);
    try {
      for (;;) {
        const n = await this.#conn!.read(b);
        if (!n) return;
        buf += new TextDecoder().decode(b.subarray(0, n));
        for (;;) {
          const colon = buf.indexOf(":");
          if (colon < 0) break;
          const len = Number(buf.slice(0, colon));
          if (buf.length < colon + 1 + len + 1) break;
          const msg = JSON.parse(buf.slice(colon + 1, colon + 1 + len));
          buf = buf.slice(colon + 1 + len + 1);
          if (msg.event) this.events.push({ type: msg.type, param: msg.param });
        }
      }
    } catch { /* closed */ }
  }

  async command(command: string, params = ""): Promise<void> {
    const j = JSON.stringify({ command, params, token: command });
    await this.#conn!.write(new TextEncoder().encode(`${new TextEncoder().encode(j).length}:${j},`));
  }

  async waitEvent(type: string, ms = 5000): Promise<void> {
    const end = Date.now() + ms;
    while (!this.events.some((e) => e.type === type)) {
      if (Date.now() > end) throw new Error(`baresip: no ${type} event; log:\n${this.#log.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Samples baresip decoded from our RTP (its sndfile "dec" dump). */
  recording(): Int16Array {
    const f = [...Deno.readDirSync(this.recDir)].find((e) => e.name.endsWith("-dec.wav"));
    if (!f) return new Int16Array(0);
    return wavSamples(Deno.readFileSync(`${this.recDir}/${f.name}`));
  }

  /** Ends the baresip process (its recordings stay readable until close()). */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    try {
      await this.command("quit");
    } catch { /* already gone */ }
    const timer = setTimeout(() => this.#proc?.kill("SIGKILL"), 3000);
    await this.#proc?.status;
    clearTimeout(timer);
    try {
      this.#conn?.close();
    } catch { /* closed */ }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.stop();
    Deno.removeSync(this.dir, { recursive: true });
  }
}

export function wavSamples(bytes: Uint8Array): Int16Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let off = 12;
  while (off + 8 <= bytes.length) {
    const id = new TextDecoder().decode(bytes.subarray(off, off + 4));
    const size = dv.getUint32(off + 4, true);
    if (id === "data") {
      const n = Math.floor(Math.min(size, bytes.length - off - 8) / 2);
      const out = new Int16Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getInt16(off + 8 + i * 2, true);
      return out;
    }
    off += 8 + size + (size & 1);
  }
  return new Int16Array(0);
}

export function rms(pcm: Int16Array): number {
  let e = 0;
  for (const s of pcm) e += s * s;
  return pcm.length ? Math.sqrt(e / pcm.length) : 0;
}
