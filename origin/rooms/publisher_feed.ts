/**
 * The feed a publishing Session pushes into (RoomPublisherFeed): converts what it gets into the room's terms
 * (48 kHz frames into the controller's jitter buffers, speech energy into the idle detector, session events
 * into room events) and ignores everything once detached. The room creates one per attached publisher.
 */
import type { ServerEvent } from "../../protocol/session_messages.ts";
import type { InboundFrame } from "../pipeline/types.ts";
import { INBOUND_RATE, to48k } from "../session/inbound_audio.ts";
import type { RoomPublisher, RoomPublisherFeed } from "./room_types.ts";

export interface PublisherFeedTarget {
  speaker(samples: Int16Array): void;
  voice(samples: Int16Array): void;
  event(publisher: RoomPublisher, event: ServerEvent): void;
  detached(feed: PublisherFeed): void;
}

export class PublisherFeed implements RoomPublisherFeed {
  readonly roomId: string;
  readonly publisher: RoomPublisher;
  readonly #target: PublisherFeedTarget;
  #detached = false;
  inboundFrames = 0;
  outboundFrames = 0;

  constructor(roomId: string, publisher: RoomPublisher, target: PublisherFeedTarget) {
    this.roomId = roomId;
    this.publisher = publisher;
    this.#target = target;
  }

  get detached(): boolean {
    return this.#detached;
  }

  onInboundFrame(frame: InboundFrame): void {
    if (this.#detached) return;
    this.inboundFrames++;
    this.#target.speaker(
      frame.sampleRate === INBOUND_RATE ? frame.samples : to48k(frame.samples, frame.sampleRate),
    );
  }

  onOutboundFrame(samples: Int16Array): void {
    if (this.#detached) return;
    this.outboundFrames++;
    this.#target.voice(samples);
  }

  onEvent(event: ServerEvent): void {
    if (!this.#detached) this.#target.event(this.publisher, event);
  }

  detach(): void {
    if (this.#detached) return;
    this.#detached = true;
    this.#target.detached(this);
  }

  /** The room took the floor away (replaced, or the room closed): no callback into the room. */
  revoke(): void {
    this.#detached = true;
  }
}
