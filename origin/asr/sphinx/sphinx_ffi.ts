/**
 * The native PocketSphinx 5prealpha API (Debian `libpocketsphinx3` + `libsphinxbase3`) through Deno FFI.
 *
 * One loaded library pair per isolate (process or worker): `sphinxLibrary()` opens it on first use and
 * `closeSphinxLibrary()` unloads it once no decoder holds it. `cmd_ln_init` is variadic, so configs are built with
 * `cmd_ln_parse_r(NULL, ps_args(), argc, argv, 0)`. All calls but `ps_init_nonblocking` are synchronous: run
 * decoders in an inference worker, never on the media loop.
 */
import { SphinxClosedError } from "./sphinx_errors.ts";

const POCKETSPHINX = {
  ps_args: { parameters: [], result: "pointer" },
  ps_init: { parameters: ["pointer"], result: "pointer" },
  /** The same call on a thread of Deno's blocking pool (a promise): a model load need not stall its worker. */
  ps_init_nonblocking: { name: "ps_init", parameters: ["pointer"], result: "pointer", nonblocking: true },
  ps_free: { parameters: ["pointer"], result: "i32" },
  ps_start_stream: { parameters: ["pointer"], result: "i32" },
  ps_start_utt: { parameters: ["pointer"], result: "i32" },
  ps_process_raw: { parameters: ["pointer", "buffer", "usize", "i32", "i32"], result: "i32" },
  ps_end_utt: { parameters: ["pointer"], result: "i32" },
  ps_get_hyp: { parameters: ["pointer", "buffer"], result: "pointer" },
  ps_get_prob: { parameters: ["pointer"], result: "i32" },
  ps_get_in_speech: { parameters: ["pointer"], result: "u8" },
  ps_get_logmath: { parameters: ["pointer"], result: "pointer" },
  ps_seg_iter: { parameters: ["pointer"], result: "pointer" },
  ps_seg_next: { parameters: ["pointer"], result: "pointer" },
  ps_seg_word: { parameters: ["pointer"], result: "pointer" },
  ps_seg_frames: { parameters: ["pointer", "buffer", "buffer"], result: "void" },
  ps_seg_prob: { parameters: ["pointer", "buffer", "buffer", "buffer"], result: "i32" },
  ps_seg_free: { parameters: ["pointer"], result: "void" },
} as const satisfies Deno.ForeignLibraryInterface;

const SPHINXBASE = {
  cmd_ln_parse_r: { parameters: ["pointer", "pointer", "i32", "buffer", "i32"], result: "pointer" },
  cmd_ln_free_r: { parameters: ["pointer"], result: "i32" },
  logmath_exp: { parameters: ["pointer", "i32"], result: "f64" },
  err_set_logfp: { parameters: ["pointer"], result: "void" },
} as const satisfies Deno.ForeignLibraryInterface;

export type PocketsphinxSymbols = Deno.DynamicLibrary<typeof POCKETSPHINX>["symbols"];
export type SphinxbaseSymbols = Deno.DynamicLibrary<typeof SPHINXBASE>["symbols"];

/** Debian's multiarch library folder for this machine (`/usr/lib/x86_64-linux-gnu` on amd64). */
export function defaultSphinxLibDir(): string {
  const triplet = Deno.build.arch === "aarch64" ? "aarch64-linux-gnu" : "x86_64-linux-gnu";
  return `/usr/lib/${triplet}`;
}

export function sphinxLibraryPaths(
  libDir = defaultSphinxLibDir(),
): { pocketsphinx: string; sphinxbase: string } {
  const dir = libDir.replace(/\/$/, "");
  return { pocketsphinx: `${dir}/libpocketsphinx.so.3`, sphinxbase: `${dir}/libsphinxbase.so.3` };
}

/** The loaded library pair. `holders` counts the decoders alive on it; it cannot be unloaded under them. */
export class SphinxLibrary {
  private holders = 0;
  private closed = false;
  private constructor(
    private readonly psLib: Deno.DynamicLibrary<typeof POCKETSPHINX>,
    private readonly baseLib: Deno.DynamicLibrary<typeof SPHINXBASE>,
    readonly paths: { pocketsphinx: string; sphinxbase: string },
  ) {}

  static open(libDir?: string): SphinxLibrary {
    const paths = sphinxLibraryPaths(libDir);
    // sphinxbase first: libpocketsphinx links against it, and we need its symbols too.
    const base = Deno.dlopen(paths.sphinxbase, SPHINXBASE);
    let ps: Deno.DynamicLibrary<typeof POCKETSPHINX>;
    try {
      ps = Deno.dlopen(paths.pocketsphinx, POCKETSPHINX);
    } catch (e) {
      base.close();
      throw e;
    }
    // Silence sphinxbase's global logger (it prints the whole config and model loading to stderr). It is one
    // per process, shared by every isolate's decoders, so decoders are built without `-logfn` (which would
    // reopen it).
    if (Deno.env.get("SPHINX_LOG") !== "1") base.symbols.err_set_logfp(null);
    return new SphinxLibrary(ps, base, paths);
  }

  get ps(): PocketsphinxSymbols {
    if (this.closed) throw new SphinxClosedError("the PocketSphinx library was unloaded");
    return this.psLib.symbols;
  }

  get base(): SphinxbaseSymbols {
    if (this.closed) throw new SphinxClosedError("the PocketSphinx library was unloaded");
    return this.baseLib.symbols;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get liveDecoders(): number {
    return this.holders;
  }

  /** A decoder takes the library for its lifetime. */
  hold(): void {
    if (this.closed) throw new SphinxClosedError("the PocketSphinx library was unloaded");
    this.holders++;
  }

  release(): void {
    if (this.holders > 0) this.holders--;
  }

  /** Unloads both libraries. Idempotent; refuses while decoders still use it (their memory lives in it). */
  close(): void {
    if (this.closed) return;
    if (this.holders > 0) {
      throw new Error(`cannot unload PocketSphinx: ${this.holders} decoder(s) still open; close them first`);
    }
    this.closed = true;
    this.psLib.close();
    this.baseLib.close();
  }
}

let shared: SphinxLibrary | null = null;

/** The isolate's library pair, opened on first use (the path comes from SPHINX_LIB_DIR or Debian's default). */
export function sphinxLibrary(libDir?: string): SphinxLibrary {
  if (!shared || shared.isClosed) {
    shared = SphinxLibrary.open(libDir ?? Deno.env.get("SPHINX_LIB_DIR") ?? undefined);
  }
  return shared;
}

/** Unloads the shared library pair if it is loaded. Idempotent; throws while decoders are open. */
export function closeSphinxLibrary(): void {
  const lib = shared;
  if (!lib) return;
  lib.close();
  shared = null;
}

const encoder = new TextEncoder();

/** NUL-terminated C strings and an argv array pointing at them; JS-owned, alive as long as the object is. */
export class CStringArray {
  private readonly strings: Uint8Array[];
  readonly argv: BigUint64Array;
  constructor(readonly values: readonly string[]) {
    this.strings = values.map((s) => {
      if (s.includes("\0")) throw new Error("a PocketSphinx argument may not contain NUL");
      return encoder.encode(s + "\0");
    });
    this.argv = new BigUint64Array(this.strings.length + 1);
    this.strings.forEach((b, i) => {
      this.argv[i] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)));
    });
  }
  get length(): number {
    return this.values.length;
  }
}

/** Reads a C string the library owns (valid until its next call on the same object). */
export function readCString(p: Deno.PointerValue): string {
  return p ? Deno.UnsafePointerView.getCString(p) : "";
}
