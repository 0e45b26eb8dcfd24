/// <reference lib="dom" />
/**
 * The room page `/rooms/{id}` (a viewer link `/rooms/{id}#token=…` opens it signed in with a room viewer token):
 * large live captions from the room's SSE stream (`GET /v1/rooms/{id}/events`, resumed with `after_seq` after a
 * drop), a Listen button (WHEP from the browser: recvonly audio + the `events` channel), the source the
 * listener hears with a selector, and the room's listener count (polled).
 */
import { getJson, request, sse } from "./api.ts";
import { $, clear, h } from "./dom.ts";
import { describeError } from "./connection.ts";

interface RoomInfo {
  id: string;
  name: string;
  live?: { listeners: number; publisher: string | null; idle: boolean } | null;
}
interface Caption {
  seq: number;
  segment_id: number;
  status: "partial" | "confirmed";
  text: string;
}

export class RoomView {
  readonly id: string;
  #abort: AbortController | undefined;
  #poll: ReturnType<typeof setInterval> | undefined;
  #pc: RTCPeerConnection | undefined;
  #events: RTCDataChannel | undefined;
  #location: string | undefined;
  #lastSeq = 0;
  readonly #partials = new Map<number, HTMLElement>();

  constructor(id: string) {
    this.id = id;
    $("room-listen").addEventListener("click", () => void (this.#pc ? this.stopListening() : this.listen()));
    $<HTMLSelectElement>("room-source").addEventListener("change", (ev) => {
      const source = (ev.target as HTMLSelectElement).value;
      if (this.#events?.readyState === "open") this.#events.send(JSON.stringify({ type: "select", source }));
    });
  }

  /** Start following captions and polling the room's state. Idempotent. */
  start(): void {
    if (this.#abort) return;
    this.#abort = new AbortController();
    void this.#follow(this.#abort.signal);
    void this.#refresh();
    this.#poll = setInterval(() => void this.#refresh(), 5000);
  }

  stop(): void {
    this.#abort?.abort();
    this.#abort = undefined;
    clearInterval(this.#poll);
    void this.stopListening();
  }

  async #refresh(): Promise<void> {
    try {
      const r = await getJson<RoomInfo>(`/v1/rooms/${this.id}`);
      $("room-name").textContent = r.name || "Room";
      document.title = `Parley · ${r.name || "Room"}`;
      $("room-listeners").textContent = String(r.live?.listeners ?? 0);
      $("room-state").textContent = !r.live?.publisher ? "no speaker" : r.live.idle ? "quiet" : "live";
    } catch (e) {
      $("room-state").textContent = describeError(e);
    }
  }

  async #follow(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await sse(`/v1/rooms/${this.id}/events?after_seq=${this.#lastSeq}`, (type, data) => {
          const ev = JSON.parse(data) as { seq: number };
          if (ev.seq <= this.#lastSeq) return;
          this.#lastSeq = ev.seq;
          if (type === "caption") this.#caption(ev as unknown as Caption);
        }, signal);
      } catch (e) {
        $("room-state").textContent = describeError(e);
      }
      if (!signal.aborted) await new Promise((r) => setTimeout(r, 2000));
    }
  }

  #caption(c: Caption): void {
    const box = $("room-captions");
    let line = this.#partials.get(c.segment_id);
    if (!line) {
      line = h("p", { class: "room-line" });
      box.append(line);
      this.#partials.set(c.segment_id, line);
    }
    line.textContent = c.text;
    line.classList.toggle("partial", c.status === "partial");
    if (c.status === "confirmed") this.#partials.delete(c.segment_id);
    while (box.childElementCount > 8) box.firstElementChild!.remove();
  }

  /** WHEP: recvonly audio + `events` channel, offer after full gathering, answer from the edge. */
  async listen(): Promise<void> {
    const button = $<HTMLButtonElement>("room-listen");
    button.disabled = true;
    try {
      const pc = new RTCPeerConnection();
      this.#pc = pc;
      pc.addTransceiver("audio", { direction: "recvonly" });
      const events = pc.createDataChannel("events");
      this.#events = events;
      events.onmessage = (m) => {
        const ev = JSON.parse(String(m.data));
        if (ev.type === "source") $("room-source-playing").textContent = ev.playing;
      };
      pc.ontrack = (ev) => {
        const audio = $<HTMLAudioElement>("room-audio");
        audio.srcObject = ev.streams[0] ?? new MediaStream([ev.track]);
        void audio.play().catch(() => {});
      };
      await pc.setLocalDescription(await pc.createOffer());
      await new Promise<void>((resolve) => {
        if (pc.iceGatheringState === "complete") return resolve();
        const t = setTimeout(resolve, 3000);
        pc.addEventListener("icegatheringstatechange", () => {
          if (pc.iceGatheringState === "complete") {
            clearTimeout(t);
            resolve();
          }
        });
      });
      const source = $<HTMLSelectElement>("room-source").value;
      const res = await request(`/v1/rooms/${this.id}/listeners?source=${source}`, {
        method: "POST",
        headers: { "content-type": "application/sdp" },
        body: pc.localDescription!.sdp,
      });
      this.#location = res.headers.get("location") ?? undefined;
      await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
      button.textContent = "Stop listening";
    } catch (e) {
      $("room-state").textContent = describeError(e);
      await this.stopListening();
    } finally {
      button.disabled = false;
    }
  }

  async stopListening(): Promise<void> {
    const pc = this.#pc, loc = this.#location;
    this.#pc = this.#events = this.#location = undefined;
    pc?.close();
    $<HTMLAudioElement>("room-audio").srcObject = null;
    $("room-listen").textContent = "Listen";
    $("room-source-playing").textContent = "—";
    if (loc) await request(loc, { method: "DELETE" }).catch(() => {});
  }

  clearCaptions(): void {
    clear($("room-captions"));
  }
}
