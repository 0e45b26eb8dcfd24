/**
 * The voice pickers of Live and TTS jobs: the `voices` datalist is filled from GET /v1/voices (names such as
 * `flite:rms`, described by engine, language and gender), the fields start on the server's default voice, and
 * each "Preview" button speaks a short sentence in the chosen voice through the TTS job API.
 */
import { getJson, request, sendJson } from "./api.ts";
import { $, announce } from "./dom.ts";
import { describeError } from "./connection.ts";
import type { VoiceList } from "../../protocol/voices.ts";
import type { TtsJob, TtsJobCreated } from "../../protocol/tts.ts";

const FIELDS = ["voice", "job-voice"] as const;

export class VoicePicker {
  #audio = new Audio();
  #url = "";

  constructor() {
    for (const id of FIELDS) {
      $(`${id}-preview`).addEventListener("click", () => void this.preview(id));
    }
  }

  /** Fills the list; a field still on its initial value moves to the server's default voice. */
  async load(): Promise<void> {
    try {
      const res = await fetch("/v1/voices"); // public: no token needed before sign-in
      if (!res.ok) throw new Error(`GET /v1/voices: ${res.status}`);
      const list = await res.json() as VoiceList;
      const dl = $<HTMLDataListElement>("voices");
      dl.replaceChildren(...list.data.map((v) => {
        const o = document.createElement("option");
        o.value = v.id;
        o.label = `${v.description}${v.gender ? `, ${v.gender}` : ""} · ${v.sample_rate / 1000} kHz` +
          (v.timings === "exact" ? "" : " · estimated timings");
        return o;
      }));
      for (const id of FIELDS) {
        const input = $<HTMLInputElement>(id);
        if (input.value === input.defaultValue) input.value = list.default;
      }
    } catch (e) {
      announce(`Could not load the voice list: ${describeError(e)}`, "error");
    }
  }

  /** Speaks one sentence in the field's voice (a small interactive TTS job). */
  async preview(id: (typeof FIELDS)[number]): Promise<void> {
    const voice = $<HTMLInputElement>(id).value.trim() || undefined;
    const btn = $<HTMLButtonElement>(`${id}-preview`);
    btn.disabled = true;
    try {
      const job = await sendJson<TtsJobCreated>("POST", "/v1/tts/jobs", {
        text: "Hello! This is how I sound.",
        voice,
        priority: "interactive",
      });
      for (let i = 0; i < 300; i++) {
        const j = await getJson<TtsJob>(job.links.self);
        if (j.status === "succeeded") break;
        if (j.status === "failed" || j.status === "canceled") throw new Error(j.error ?? j.status);
        await new Promise((r) => setTimeout(r, 200));
      }
      const blob = await (await request(job.links.audio)).blob();
      if (this.#url) URL.revokeObjectURL(this.#url);
      this.#url = URL.createObjectURL(blob);
      this.#audio.src = this.#url;
      await this.#audio.play();
    } catch (e) {
      announce(`Preview failed: ${describeError(e)}`, "error");
    } finally {
      btn.disabled = false;
    }
  }
}
