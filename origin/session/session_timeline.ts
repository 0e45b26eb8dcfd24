/**
 * A session's event timeline, whatever carries its media (WebRTC peer, phone call): every event gets the next
 * seq and is persisted (db/sessions appendEvent, one transaction, confirmed transcripts included) BEFORE it is
 * handed to `deliver` (a data channel, or nothing for a phone call whose followers read Postgres over SSE), so
 * anything a client could see is already stored. One promise chain per session keeps seq order = send order.
 */
import type { Database } from "../../db/client.ts";
import { appendEvent } from "../../db/sessions.ts";
import type { SessionEventLog } from "./event_log.ts";
import type { ServerEvent, ServerEventBody } from "../../protocol/session_messages.ts";

export class SessionTimeline {
  #chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly db: Database,
    private readonly sessionId: string,
    private readonly deliver: (event: ServerEvent) => void = () => {},
    /** Outage-tolerant storage (event_log.ts): kept in order and retried while the database is unreachable. */
    private readonly log?: SessionEventLog,
  ) {}

  /** Persist, then deliver. Resolves with the seq once persisted. */
  append(body: ServerEventBody): Promise<number> {
    const ticket = this.log?.enqueue();
    return this.run(async () => {
      const seq = this.log && ticket
        ? await this.log.append(body, ticket)
        : await appendEvent(this.db, this.sessionId, body);
      this.deliver({ ...body, seq } as ServerEvent);
      return seq;
    });
  }

  /**
   * Run a step inside the chain (nothing is appended meanwhile): a resume replay. A failing step rejects its
   * own promise only; the chain goes on.
   */
  run<T>(step: () => Promise<T>): Promise<T> {
    const p = this.#chain.then(step);
    this.#chain = p.catch(() => {});
    return p;
  }

  /** Resolves when everything appended so far is persisted (and delivered). */
  settled(): Promise<void> {
    return this.#chain.then(() => {});
  }
}
