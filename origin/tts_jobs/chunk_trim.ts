/**
 * The silence a job chunk keeps at its edges. Chunks are synthesized one by one, and an engine puts a sentence's
 * pauses around each; where a chunk boundary falls inside a sentence (the first sentence's lead piece, an
 * over-long sentence cut in pieces: protocol/tts_text.ts), those pauses are trimmed to a phrase break or a joint,
 * so the pieces play like one sentence. The job's first chunk keeps a short lead-in (START_PAUSE_MS) instead of
 * the engine's. SSML chunks are left as rendered: their pauses are the markup's.
 */
import type { ClaimedChunk } from "../../db/tts_jobs.ts";
import { chunkEnd } from "../../protocol/tts_text.ts";
import { JOIN_PAUSE_MS, START_PAUSE_MS } from "../tts/trim_edges.ts";
import type { ChunkTrim } from "./synth.ts";

export function chunkTrim(
  c: Pick<ClaimedChunk, "idx" | "text" | "prevText" | "chunksTotal" | "ssml">,
): ChunkTrim | undefined {
  if (c.ssml) return undefined;
  const trim: ChunkTrim = {};
  if (c.idx === 0) trim.headMs = START_PAUSE_MS;
  else if (c.prevText !== null) {
    const before = chunkEnd(c.prevText);
    if (before !== "sentence") trim.headMs = JOIN_PAUSE_MS[before];
  }
  const end = chunkEnd(c.text);
  if (end !== "sentence" && c.idx < c.chunksTotal - 1) trim.tailMs = JOIN_PAUSE_MS[end];
  return trim.headMs === undefined && trim.tailMs === undefined ? undefined : trim;
}
