/// <reference lib="dom" />
/** The History view: the tenant's sessions, one transcript, downloads (TXT/WebVTT/SRT), full-text search. */
import { getJson, request } from "./api.ts";
import { $, announce, clear, h, mmss, saveBlob } from "./dom.ts";
import { describeError } from "./connection.ts";
import type { SearchResult, SessionList, SessionSummary, Transcript } from "../../protocol/history.ts";

const ENTITIES: Record<string, string> = {
  "&lt;": "<",
  "&gt;": ">",
  "&amp;": "&",
  "&quot;": '"',
  "&#39;": "'",
};

/** The search API's snippet is escaped HTML with <mark> around hits: rebuild it as DOM, never as innerHTML. */
export function snippet(html: string): HTMLElement {
  const el = h("span", { class: "preview" });
  html.split(/(<mark>|<\/mark>)/).reduce((inMark, part) => {
    if (part === "<mark>") return true;
    if (part === "</mark>") return false;
    const text = part.replace(/&(?:lt|gt|amp|quot|#39);/g, (m) => ENTITIES[m] ?? m);
    if (text) el.append(inMark ? h("mark", {}, text) : text);
    return inMark;
  }, false);
  return el;
}

/** "ended" for a normal hang-up, the close reason otherwise, or the live state. */
function stateLabel(r: SessionSummary): string {
  if (r.state !== "closed") return r.state;
  return !r.reason || r.reason === "client_hangup" ? "ended" : r.reason.replaceAll("_", " ");
}

const EXT: Record<string, string> = { text: "txt", vtt: "vtt", srt: "srt" };

export class HistoryView {
  readonly list = $<HTMLUListElement>("session-list");
  readonly results = $<HTMLUListElement>("search-results");
  readonly transcript = $<HTMLOListElement>("transcript");
  readonly meta = $("transcript-meta");
  readonly downloads = $("downloads");
  #selected: string | null = null;
  #cursor: string | null = null;

  constructor() {
    $<HTMLFormElement>("search-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      void this.search($<HTMLInputElement>("search-q").value.trim());
    });
    $("search-clear").addEventListener("click", () => {
      $<HTMLInputElement>("search-q").value = "";
      this.results.hidden = true;
      this.list.hidden = false;
    });
    $("history-refresh").addEventListener("click", () => void this.refresh());
    this.downloads.addEventListener("click", (ev) => {
      const f = (ev.target as HTMLElement).closest("button")?.dataset.format;
      if (f) void this.download(f);
    });
  }

  /** First page (newest sessions); `more` appends the next page (keyset cursor from the API). */
  async refresh(more = false): Promise<void> {
    try {
      const cursor = more && this.#cursor ? `&cursor=${encodeURIComponent(this.#cursor)}` : "";
      const body = await getJson<SessionList>(`/v1/sessions?limit=50${cursor}`);
      const rows = body.sessions;
      this.#cursor = body.next_cursor;
      if (!more) clear(this.list);
      this.list.querySelector(".more")?.remove();
      if (!rows.length && !more) this.list.append(h("li", { class: "hint" }, "No sessions yet."));
      for (const r of rows) {
        const when = new Date(r.created_at).toLocaleString();
        const btn = h(
          "button",
          {
            type: "button",
            class: "row-button",
            "data-session": r.id,
            "aria-current": r.id === this.#selected,
          },
          h("span", { class: "when" }, when),
          " ",
          h("span", { class: "badge" }, r.mode),
          " ",
          h("span", { class: "badge state" }, stateLabel(r)),
        );
        btn.addEventListener("click", () => void this.open(r.id));
        this.list.append(h("li", {}, btn));
      }
      if (this.#cursor) {
        const b = h("button", { type: "button", class: "link" }, "Load more");
        b.addEventListener("click", () => void this.refresh(true));
        this.list.append(h("li", { class: "more" }, b));
      }
    } catch (e) {
      announce(`Could not load sessions: ${describeError(e)}`, "error");
    }
  }

  async open(id: string): Promise<void> {
    this.#selected = id;
    for (const b of this.list.querySelectorAll<HTMLElement>("[data-session]")) {
      if (b.dataset.session === id) b.setAttribute("aria-current", "true");
      else b.removeAttribute("aria-current");
    }
    clear(this.transcript);
    this.meta.textContent = "Loading…";
    try {
      const body = await getJson<Transcript>(`/v1/sessions/${id}/transcript?format=json`);
      const segs = body.segments;
      this.meta.textContent = `Session ${id} · ${segs.length} segment${segs.length === 1 ? "" : "s"}`;
      this.meta.dataset.session = id;
      for (const s of segs) {
        this.transcript.append(
          h("li", {}, h("time", {}, `${mmss(s.start_ms)}`), " ", h("span", { class: "text" }, s.text)),
        );
      }
      this.downloads.hidden = false;
    } catch (e) {
      this.meta.textContent = `Could not load the transcript: ${describeError(e)}`;
      this.downloads.hidden = true;
    }
  }

  async download(format: string): Promise<void> {
    if (!this.#selected) return;
    try {
      const res = await request(`/v1/sessions/${this.#selected}/transcript?format=${format}`);
      saveBlob(await res.blob(), `transcript-${this.#selected}.${EXT[format] ?? format}`);
    } catch (e) {
      announce(`Download failed: ${describeError(e)}`, "error");
    }
  }

  async search(q: string): Promise<void> {
    if (!q) return;
    try {
      const body = await getJson<SearchResult>(`/v1/transcripts/search?q=${encodeURIComponent(q)}`);
      const hits = body.results;
      clear(this.results);
      this.results.hidden = false;
      this.list.hidden = true;
      this.results.append(h("li", { class: "hint" }, `${hits.length} match${hits.length === 1 ? "" : "es"}`));
      for (const hit of hits) {
        const btn = h(
          "button",
          { type: "button", class: "row-button", "data-session": hit.session_id },
          h("span", { class: "when" }, new Date(hit.created_at).toLocaleString()),
          " ",
          snippet(hit.snippet),
        );
        btn.addEventListener("click", () => void this.open(hit.session_id));
        this.results.append(h("li", {}, btn));
      }
    } catch (e) {
      announce(`Search failed: ${describeError(e)}`, "error");
    }
  }
}
