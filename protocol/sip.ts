/**
 * Wire types of the phone-call admin API: SIP digest credentials and numbers (`/v1/sip/credentials`,
 * `/v1/numbers`). Validated by the edge and documented in its OpenAPI from these schemas.
 */
import { z } from "zod";
import { SessionOptions } from "./session_messages.ts";

/** SIP user names: RFC 3261 `user` characters that need no escaping. */
const SIP_USER = /^[A-Za-z0-9._~!$&'()*+,;=-]{1,64}$/;

export const CreateSipCredential = z.object({
  username: z.string().regex(SIP_USER, "1–64 unreserved SIP user characters"),
  password: z.string().min(8).max(256),
}).strict();
export type CreateSipCredential = z.infer<typeof CreateSipCredential>;

export const SipCredential = z.object({
  id: z.uuid(),
  username: z.string(),
  realm: z.string(),
  created_at: z.string(),
});
export type SipCredential = z.infer<typeof SipCredential>;

export const CreateSipNumber = z.object({
  /** The Request-URI user part callers dial: a number or extension. */
  number: z.string().regex(SIP_USER, "1–64 unreserved SIP user characters"),
  /** Session options of each call to this number (mode transcribe | echo | say, voice, …). */
  options: SessionOptions.default({
    mode: "transcribe",
    language: "en",
    barge_in: true,
    partials: true,
    noise_suppression: false,
  }),
  /** Spoken when a call is answered. */
  greeting: z.string().min(1).max(1000).optional(),
  /**
   * Room each call publishes into (a room of the tenant): the caller's voice, Parley's voice and the call's
   * captions reach the room's listeners and viewers. Shorthand for `options.room`.
   */
  room: z.uuid().optional(),
}).strict();
export type CreateSipNumber = z.input<typeof CreateSipNumber>;

export const SipNumber = z.object({
  id: z.uuid(),
  number: z.string(),
  options: SessionOptions,
  greeting: z.string().nullable(),
  /** The room calls publish into (= options.room), or null. */
  room: z.uuid().nullable(),
  created_at: z.string(),
});
export type SipNumber = z.infer<typeof SipNumber>;
