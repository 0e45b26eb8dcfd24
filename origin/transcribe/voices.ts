/**
 * GET /v1/voices, origin side: every voice of the synthesis engines this origin runs (the configured one, and
 * espeak, which is always offline-available), with what a client needs to choose: language, output rate,
 * whether word timings are exact, and the OpenAI names mapped to it (protocol/openai.ts OPENAI_VOICES).
 */
import type { EngineHub } from "../pipeline/engine_hub.ts";
import type { VoiceService } from "../services.ts";
import { OPENAI_VOICES, type OpenAiVoice } from "../../protocol/openai.ts";
import { isKnownVoice, TTS_SAMPLE_RATE } from "../../protocol/tts.ts";
import type { TtsEngineName } from "../../protocol/engines.ts";

/** What the engines report about their output that `Voice` does not carry. */
const ENGINE_FACTS: Partial<
  Record<TtsEngineName, { sampleRate: number | null; timings: "exact" | "estimated" }>
> = {
  espeak: { sampleRate: 22050, timings: "exact" },
  vits: { sampleRate: null, timings: "estimated" },
};

export function voiceService(hub: EngineHub, configured: TtsEngineName): VoiceService {
  let cached: Promise<OpenAiVoice[]> | null = null;
  const load = async (): Promise<OpenAiVoice[]> => {
    const engines = [...new Set<TtsEngineName>([configured, "espeak"])];
    const out: OpenAiVoice[] = [];
    for (const engine of engines) {
      const facts = ENGINE_FACTS[engine] ?? { sampleRate: TTS_SAMPLE_RATE, timings: "estimated" as const };
      for (const v of await hub.listVoices(engine)) {
        // the job API names the one voice of a vits model "default"
        const voice = engine === "vits" ? "default" : v.id;
        if (!isKnownVoice(engine, voice)) continue; // listed by the engine but refused when set
        out.push({
          id: `${engine}:${voice}`,
          engine,
          voice,
          name: v.name,
          languages: v.languages,
          gender: null,
          sample_rate: facts.sampleRate,
          timings: facts.timings,
          openai_aliases: Object.entries(OPENAI_VOICES).filter(([, m]) => m[engine] === voice).map(([k]) =>
            k
          ),
        });
      }
    }
    return out;
  };
  return {
    list() {
      cached ??= load().catch((e) => {
        cached = null;
        throw e;
      });
      return cached;
    },
  };
}
