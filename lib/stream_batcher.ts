/**
 * Batches the requests of many streams into one model round trip: requests that arrive while a round trip is
 * in flight go together in the next one, so N streams cost one round trip per tick, not N. A batch holds at
 * most one request per stream, because a stream's requests chain through its recurrent state and must run in
 * order; a stream that fell behind sends all its pending input in one request and catches up in one trip.
 * Used by the VAD (origin/pipeline/vad.ts) and noise suppression (origin/audio/denoise.ts).
 */
export interface StreamRequest<K> {
  readonly stream: K;
}

export class StreamBatcher<K, R extends StreamRequest<K>> {
  private pending: R[] = [];
  private scheduled = false;
  private running = false;

  /**
   * `runBatch` settles every request of its batch itself and answers whether to go on (false stops the loop,
   * e.g. after a failed trip that carried no request). `hasOtherWork` keeps the loop going for work that is
   * not a request (streams whose worker state must still be freed).
   */
  constructor(
    private readonly runBatch: (batch: R[]) => Promise<boolean>,
    private readonly maxBatch: number,
    private readonly hasOtherWork: () => boolean = () => false,
  ) {}

  push(request: R): void {
    this.pending.push(request);
    this.schedule();
  }

  /** Starts a round trip for work that is not a request (see `hasOtherWork`). */
  kick(): void {
    this.schedule();
  }

  /** Requests waiting for the model. */
  get queued(): number {
    return this.pending.length;
  }

  /** Whether a round trip is scheduled, running or waiting. */
  get busy(): boolean {
    return this.running || this.scheduled || this.pending.length > 0 || this.hasOtherWork();
  }

  private schedule(): void {
    if (this.scheduled || this.running) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      void this.drain();
    });
  }

  private async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.pending.length || this.hasOtherWork()) {
        const seen = new Set<K>();
        const batch: R[] = [];
        const rest: R[] = [];
        for (const p of this.pending) {
          if (batch.length < this.maxBatch && !seen.has(p.stream)) {
            seen.add(p.stream);
            batch.push(p);
          } else rest.push(p);
        }
        this.pending = rest;
        if (!await this.runBatch(batch)) break;
      }
    } finally {
      this.running = false;
    }
  }
}
