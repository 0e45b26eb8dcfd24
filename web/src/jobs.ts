/// <reference lib="dom" />
/** The TTS jobs view: create a job, list jobs with live progress (SSE over fetch), play or download audio. */
import { getJson, request, sendJson, sse } from "./api.ts";
import { $, announce, clear, h, saveBlob } from "./dom.ts";
import { describeError } from "./connection.ts";
import type {
  CreateTtsJobRequest,
  TtsEvent,
  TtsJob,
  TtsJobCreated,
  TtsJobList,
  TtsJobStatus,
  TtsPriority,
} from "../../protocol/tts.ts";

/** A job as the page keeps it: the API's TtsJob (partly known until the first status event) + the text. */
export type Job = Partial<TtsJob> & {
  id: string;
  status: TtsJobStatus;
  text?: string;
  chunks_total?: number;
};

const FINAL = new Set<string>(["succeeded", "failed", "canceled"]);

/** Progress as 0..1: characters synthesized (chunks when characters are unknown). */
export function progressOf(j: Job): number {
  if (j.status === "succeeded") return 1;
  const p = j.progress;
  if (p?.chars_total) return Math.min(1, p.chars_done / p.chars_total);
  if (p?.chunks_total) return Math.min(1, p.chunks_done / p.chunks_total);
  return 0;
}

export class JobsView {
  readonly list = $<HTMLUListElement>("job-list");
  readonly audio = $<HTMLAudioElement>("job-audio");
  readonly error = $("job-error");
  #jobs = new Map<string, Job>();
  #rows = new Map<string, HTMLLIElement>();
  #streams = new Map<string, AbortController>();
  #audioUrl: string | null = null;

  constructor() {
    $<HTMLFormElement>("job-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      void this.submit();
    });
    $("jobs-refresh").addEventListener("click", () => void this.refresh());
  }

  async submit(): Promise<void> {
    const text = $<HTMLTextAreaElement>("job-text").value.trim();
    const voice = $<HTMLInputElement>("job-voice").value.trim() || undefined;
    const priority = $<HTMLSelectElement>("job-priority").value as TtsPriority;
    this.error.textContent = "";
    if (!text) {
      this.error.textContent = "Enter some text.";
      return;
    }
    const btn = $<HTMLButtonElement>("job-submit");
    btn.disabled = true;
    try {
      const req: CreateTtsJobRequest = { text, voice, priority };
      const job = await sendJson<TtsJobCreated>("POST", "/v1/tts/jobs", req);
      $<HTMLTextAreaElement>("job-text").value = "";
      announce("Job created");
      this.#upsert({ id: job.id, status: job.status, text, voice, priority });
      this.#follow(job.id);
    } catch (e) {
      this.error.textContent = describeError(e);
    } finally {
      btn.disabled = false;
    }
  }

  async refresh(): Promise<void> {
    try {
      const { jobs } = await getJson<TtsJobList>("/v1/tts/jobs?limit=50");
      for (const j of jobs.reverse()) {
        this.#upsert(j);
        if (!FINAL.has(j.status)) this.#follow(j.id);
      }
      if (!jobs.length && !this.#jobs.size) {
        clear(this.list);
        this.list.append(h("li", { class: "hint", id: "no-jobs" }, "No jobs yet."));
      }
    } catch (e) {
      announce(`Could not load jobs: ${describeError(e)}`, "error");
    }
  }

  /** Follow a job's progress over SSE until it finishes; on a dropped stream, poll once and retry. */
  #follow(id: string): void {
    if (this.#streams.has(id)) return;
    const ctl = new AbortController();
    this.#streams.set(id, ctl);
    void (async () => {
      for (let attempt = 0; attempt < 20 && !ctl.signal.aborted; attempt++) {
        try {
          await sse(`/v1/tts/jobs/${id}/events`, (event, data) => {
            let e: TtsEvent;
            try {
              e = { event, data: JSON.parse(data) } as TtsEvent;
            } catch {
              return;
            }
            const prev = this.#jobs.get(id) ?? { id, status: "queued" as const };
            if (e.event === "progress") {
              const { status, ...progress } = e.data;
              this.#upsert({ ...prev, status, progress });
            } else if (e.event === "status" || FINAL.has(e.event)) {
              this.#upsert({ ...prev, ...e.data });
            }
          }, ctl.signal);
        } catch { /* stream failed: fall through to a poll */ }
        try {
          const j = await getJson<TtsJob>(`/v1/tts/jobs/${id}`);
          this.#upsert({ ...this.#jobs.get(id), ...j });
        } catch { /* keep trying */ }
        if (FINAL.has(this.#jobs.get(id)?.status ?? "")) break;
        await new Promise((r) => setTimeout(r, 1000));
      }
      this.#streams.delete(id);
    })();
  }

  #upsert(j: Job): void {
    document.getElementById("no-jobs")?.remove();
    const prev = this.#jobs.get(j.id);
    const job = { ...prev, ...j };
    this.#jobs.set(j.id, job);
    let li = this.#rows.get(j.id);
    if (!li) {
      li = h("li", { "data-job": j.id });
      this.#rows.set(j.id, li);
      this.list.prepend(li);
    }
    const p = progressOf(job);
    const pct = Math.round(p * 100);
    const label = (job.text ??
      `${job.voice ?? ""} ${job.timings ? new Date(job.timings.queued_at).toLocaleString() : ""}`)
      .slice(0, 80);
    li.dataset.status = job.status;
    li.dataset.progress = String(pct);
    clear(li);
    const done = job.status === "succeeded";
    const parts: Array<Node | null> = [
      h(
        "div",
        { class: "job-head" },
        h("span", { class: "job-text" }, label || job.id),
        " ",
        h("span", { class: "badge" }, job.status),
      ),
      h(
        "div",
        { class: "job-bar" },
        h("progress", { max: 100, value: pct, "aria-label": `Progress of “${label.slice(0, 30)}”` }),
        h("span", { class: "pct" }, `${pct}%`),
      ),
      done
        ? h(
          "div",
          { class: "buttons" },
          h("button", { type: "button", class: "play", onclick: () => void this.play(job.id) }, "Play"),
          h("button", {
            type: "button",
            class: "download",
            onclick: () => void this.download(job.id),
          }, "Download WAV"),
        )
        : FINAL.has(job.status)
        ? null
        : h(
          "div",
          { class: "buttons" },
          h("button", { type: "button", class: "cancel", onclick: () => void this.cancel(job.id) }, "Cancel"),
        ),
      job.error ? h("p", { class: "error" }, job.error) : null,
    ];
    for (const part of parts) if (part) li.append(part);
  }

  async cancel(id: string): Promise<void> {
    try {
      const job = await (await request(`/v1/tts/jobs/${id}`, { method: "DELETE" })).json() as TtsJob;
      this.#upsert({ ...this.#jobs.get(id), ...job });
      this.#streams.get(id)?.abort();
      announce(job.status === "canceled" ? "Job canceled" : `The job had already ${job.status}`);
    } catch (e) {
      announce(`Could not cancel: ${describeError(e)}`, "error");
    }
  }

  async #audioBlob(id: string): Promise<Blob> {
    return await (await request(`/v1/tts/jobs/${id}/audio`)).blob();
  }

  async play(id: string): Promise<void> {
    try {
      const blob = await this.#audioBlob(id);
      if (this.#audioUrl) URL.revokeObjectURL(this.#audioUrl);
      this.#audioUrl = URL.createObjectURL(blob);
      this.audio.src = this.#audioUrl;
      this.audio.hidden = false;
      this.audio.dataset.job = id;
      await this.audio.play();
    } catch (e) {
      announce(`Could not play: ${describeError(e)}`, "error");
    }
  }

  async download(id: string): Promise<void> {
    try {
      saveBlob(await this.#audioBlob(id), `tts-${id}.wav`);
    } catch (e) {
      announce(`Download failed: ${describeError(e)}`, "error");
    }
  }
}
