/**
 * The messages between the origin supervisor (origin/supervisor.ts) and its child processes: one JSON object per
 * line, child → supervisor on the child's stdout (between its human log lines), supervisor → child on the
 * child's stdin. Every message is wrapped as `{"parley_supervisor": <message>}` so a human line or a stray
 * JSON line can never be mistaken for one. The human lines ("Parley origin … serving at …") stay for people.
 */
import { z } from "zod";

export const supervisorMessageSchema = z.discriminatedUnion("type", [
  /** Child: it accepts sessions at `url`. */
  z.object({ type: z.literal("serving"), nodeId: z.string(), url: z.string() }),
  /** Child: a tenth of its sessions are left; the supervisor starts the successor so it has loaded in time. */
  z.object({ type: z.literal("recycling_soon"), nodeId: z.string() }),
  /** Child: it stopped accepting after `accepted` sessions and exits once its last session ended. */
  z.object({ type: z.literal("recycling"), nodeId: z.string(), accepted: z.number().int() }),
  /** Supervisor: the child's successor accepts sessions; the child may stop accepting now. */
  z.object({ type: z.literal("successor_serving") }),
]);

export type SupervisorMessage = z.infer<typeof supervisorMessageSchema>;
/** What a child says. */
export type ChildMessage = Exclude<SupervisorMessage, { type: "successor_serving" }>;

const KEY = "parley_supervisor";

/** One line (without the newline) carrying `message`. */
export function encodeSupervisorMessage(message: SupervisorMessage): string {
  return JSON.stringify({ [KEY]: message });
}

/** The message a line carries, or null for any other line (human log lines, other JSON, malformed messages). */
export function decodeSupervisorMessage(line: string): SupervisorMessage | null {
  const text = line.trim();
  if (!text.startsWith(`{"${KEY}"`)) return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  const parsed = supervisorMessageSchema.safeParse((value as Record<string, unknown>)[KEY]);
  return parsed.success ? parsed.data : null;
}
