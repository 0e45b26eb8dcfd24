/**
 * Gives freed native heap back to the OS. A PocketSphinx decoder is tens of MB of small `malloc` blocks; after
 * `ps_free` glibc keeps most of them in its arenas (every worker thread has its own), so a process that builds and
 * frees decoders keeps the RSS of its peak. `malloc_trim(0)` (glibc) releases the free pages of every arena.
 * Elsewhere (musl, macOS) it is a no-op that reports false.
 */
let trim: ((pad: bigint) => number) | null | undefined;

function load(): ((pad: bigint) => number) | null {
  if (trim !== undefined) return trim;
  trim = null;
  if (Deno.build.os !== "linux") return trim;
  try {
    const lib = Deno.dlopen("libc.so.6", { malloc_trim: { parameters: ["usize"], result: "i32" } });
    trim = (pad) => lib.symbols.malloc_trim(pad);
  } catch {
    trim = null; // not glibc
  }
  return trim;
}

/** Returns free heap pages to the OS; true when memory was released. */
export function trimNativeHeap(): boolean {
  const f = load();
  return f ? f(0n) === 1 : false;
}
