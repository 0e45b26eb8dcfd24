import assert from "node:assert/strict";
import { FliteEngine } from "./engine.ts";
import { FliteRuntime } from "./runtime.ts";
import { EngineClosedError, InvalidOptionError, SynthesisError, UnknownVoiceError } from "./errors.ts";
import { FLITE_VOICES } from "./voices.ts";
import { visemeOfArpabet } from "./arpabet.ts";

const rms = (pcm: Int16Array, from = 0, to = pcm.length) => {
  let s = 0;
  for (let i = from; i < to; i++) s += pcm[i] * pcm[i];
  return Math.sqrt(s / Math.max(1, to - from));
};

Deno.test("flite: every voice speaks a sentence with ordered word timings that cover the audio", async () => {
  const e = await FliteEngine.load();
  try {
    const text = "Please close the window, then lock the door.";
    for (const v of FLITE_VOICES) {
      const r = await e.synthesize(text, v.id);
      const pcm = r.pcm as Int16Array;
      assert.equal(r.sampleRate, v.sampleRate, v.id);
      assert.equal(r.estimated, false);
      assert.ok(r.durationMs > 1500 && r.durationMs < 5000, `${v.id} duration ${r.durationMs}`);
      assert.ok(rms(pcm) > 300, `${v.id} is silent`);
      assert.deepEqual(r.words.map((w) => w.text), [
        "Please",
        "close",
        "the",
        "window",
        "then",
        "lock",
        "the",
        "door",
      ]);
      for (const [i, w] of r.words.entries()) {
        assert.equal(text.slice(w.char_start, w.char_end), w.text);
        assert.ok(w.duration_ms > 0, `${v.id} ${w.text} has no duration`);
        if (i) {
          assert.ok(w.start_ms >= r.words[i - 1].start_ms + r.words[i - 1].duration_ms, `${v.id} overlap`);
        }
        // each word's span holds sound
        const a = Math.floor(w.start_ms * r.sampleRate / 1000),
          b = Math.floor((w.start_ms + w.duration_ms) * r.sampleRate / 1000);
        assert.ok(rms(pcm, a, b) > 200, `${v.id} "${w.text}" span is silent`);
      }
      const first = r.words[0], last = r.words.at(-1)!;
      assert.ok(first.start_ms < 400, `${v.id} first word at ${first.start_ms}`);
      assert.ok(last.start_ms + last.duration_ms > r.durationMs - 400, `${v.id} last word ends early`);
      // phonemes tile the audio
      let t = 0;
      for (const p of r.phonemes) {
        assert.equal(p.start_ms, t);
        t += p.duration_ms;
      }
      assert.ok(Math.abs(t - r.durationMs) < 2, `${v.id} phonemes end at ${t}, audio ${r.durationMs}`);
      assert.ok(r.phonemes.some((p) => p.viseme === "closed") && r.phonemes.some((p) => p.viseme === "o"));
    }
  } finally {
    await e.close();
  }
});

Deno.test("flite: normalised words map back to the source tokens", async () => {
  const e = await FliteEngine.load({ defaultVoice: "kal16" });
  try {
    const text = "It's 5 pm, Dr. Smith; the U.S.A. team won 3 to 1 at well-known Hall 12.";
    const r = await e.synthesize(text);
    const expected = "It's 5 pm Dr Smith the U.S.A team won 3 to 1 at well-known Hall 12".split(" ");
    assert.deepEqual(r.words.map((w) => w.text), expected);
    for (const w of r.words) {
      assert.equal(text.slice(w.char_start, w.char_end), w.text);
      assert.ok(w.duration_ms > 40, `"${w.text}" ${w.duration_ms} ms`);
    }
    // "twelve" lasts longer than "at"
    assert.ok(r.words.at(-1)!.duration_ms > r.words[12].duration_ms);
  } finally {
    await e.close();
  }
});

Deno.test("flite: a trap fails one call with SynthesisError; the engine keeps working; close is idempotent", async () => {
  const rt = await FliteRuntime.create();
  const e = await FliteEngine.load({ runtime: rt });
  await e.synthesize("warm up", "slt");
  const before = rt.instances;
  // `-pr Syllable` aborts inside flite (a WebAssembly trap)
  assert.throws(
    () => rt.run(["-voice", "slt", "-t", "hello", "-pr", "Syllable"], { wav: false }),
    (err: unknown) => err instanceof SynthesisError && /unreachable/.test(err.message),
  );
  const r = await e.synthesize("Still talking after the trap.", "slt");
  assert.ok(r.words.length === 5 && r.durationMs > 1000);
  assert.equal(rt.instances, before + 1);
  await assert.rejects(e.synthesize("x", "nope"), UnknownVoiceError);
  await assert.rejects(e.synthesize("x", "slt", { speed: 3 }), InvalidOptionError);
  await e.close();
  await e.close();
  await assert.rejects(e.synthesize("x"), EngineClosedError);
  assert.throws(() => rt.run(["-t", "x"], { wav: false }), EngineClosedError);
});

Deno.test("flite: known words need no pronunciation run; the timings are the same as when listed", async () => {
  const rt = await FliteRuntime.create();
  const e = await FliteEngine.load({ runtime: rt, warmUp: false });
  const runs: string[] = [];
  const run = rt.run.bind(rt);
  rt.run = (args, opts) => {
    runs.push(args.find((a) => a.startsWith("-p"))!);
    return run(args, opts);
  };
  try {
    const text = "It's five past nine, Dr. Smith.";
    const first = await e.synthesize(text, "rms");
    assert.deepEqual(runs, ["-psdur", "-pw", "-ps"]); // audio, words, then the new words' phones
    runs.length = 0;
    const again = await e.synthesize(text, "rms");
    assert.deepEqual(runs, ["-psdur", "-pw"]);
    assert.deepEqual(again.words, first.words);
    assert.deepEqual(again.phonemes, first.phonemes);
    // a sentence with one new word lists only that word
    runs.length = 0;
    await e.synthesize("Dr. Smith, it's nine.", "rms");
    assert.deepEqual(runs, ["-psdur", "-pw"]);
    await e.synthesize("Dr. Smith sings.", "rms");
    assert.deepEqual(runs.slice(2), ["-psdur", "-pw", "-ps"]);
  } finally {
    await e.close();
  }
});

Deno.test("flite: speed 2.0 roughly halves the duration, 0.5 doubles it", async () => {
  const e = await FliteEngine.load();
  try {
    const text = "The quick brown fox jumps over the lazy dog.";
    const base = (await e.synthesize(text, "slt")).durationMs;
    const fast = await e.synthesize(text, "slt", { speed: 2 });
    const slow = (await e.synthesize(text, "slt", { speed: 0.5 })).durationMs;
    assert.ok(
      fast.durationMs / base > 0.4 && fast.durationMs / base < 0.65,
      `fast ${fast.durationMs} / ${base}`,
    );
    assert.ok(slow / base > 1.6 && slow / base < 2.4, `slow ${slow} / ${base}`);
    const last = fast.words.at(-1)!;
    assert.ok(last.start_ms + last.duration_ms <= fast.durationMs);
  } finally {
    await e.close();
  }
});

Deno.test("flite: word starts match the audio's energy onsets after pauses", async () => {
  const e = await FliteEngine.load();
  const errors: number[] = [];
  try {
    const text = "Apple. Banana, cherry. Date! Elderberry; fig. Grape? Kiwi, lemon. Mango.";
    for (const v of ["rms", "slt", "awb", "kal16"]) {
      const r = await e.synthesize(text, v);
      const pcm = r.pcm as Int16Array;
      const hop = Math.round(r.sampleRate / 200); // 5 ms frames
      const frames: number[] = [];
      for (let i = 0; i + hop <= pcm.length; i += hop) frames.push(rms(pcm, i, i + hop));
      const peak = Math.max(...frames);
      const loud = frames.map((x) => x > peak * 0.05);
      const onsets: number[] = [];
      let quiet = 0;
      loud.forEach((l, i) => {
        if (l && quiet >= 20) onsets.push(i * 5); // sound after ≥ 100 ms of quiet
        quiet = l ? 0 : quiet + 1;
      });
      assert.ok(onsets.length >= 6, `${v}: ${onsets.length} onsets`);
      const mine = onsets.map((o) => Math.min(...r.words.map((w) => Math.abs(w.start_ms - o))));
      console.log(`${v}: onset errors ${mine.join(" ")} ms`);
      errors.push(...mine);
    }
  } finally {
    await e.close();
  }
  errors.sort((a, b) => a - b);
  const median = errors[Math.floor(errors.length / 2)];
  console.log(
    `telop word start vs energy onset: median ${median} ms, max ${errors.at(-1)} ms over ${errors.length}`,
  );
  assert.ok(median <= 30, `median ${median} ms`);
});

Deno.test("flite: WASM memory does not grow across 200 calls (RSS in a subprocess)", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./leak_probe.ts", import.meta.url).pathname, "200"],
    stdout: "piped",
    stderr: "null",
  }).output();
  assert.ok(out.success);
  const { warm, end } = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
  console.log(`flite RSS after 20 calls ${warm.toFixed(0)} MB, after 200 ${end.toFixed(0)} MB`);
  assert.ok(end - warm < 40, `RSS grew ${warm} → ${end} MB`);
});

Deno.test("flite: ARPAbet visemes", () => {
  assert.equal(visemeOfArpabet("aa"), "a");
  assert.equal(visemeOfArpabet("iy1"), "i");
  assert.equal(visemeOfArpabet("uw"), "u");
  assert.equal(visemeOfArpabet("eh"), "e");
  assert.equal(visemeOfArpabet("ow"), "o");
  assert.equal(visemeOfArpabet("m"), "closed");
  assert.equal(visemeOfArpabet("pau"), "rest");
  assert.equal(visemeOfArpabet("s"), "rest");
});

Deno.test("flite: a run leaves no temp folder behind, also when the runtime is never closed", async () => {
  const saved = Deno.env.get("TMPDIR");
  const tmp = Deno.makeTempDirSync({ prefix: "parley-flite-test-" }); // private: other processes use /tmp too
  Deno.env.set("TMPDIR", tmp);
  try {
    const rt = await FliteRuntime.create();
    const e = await FliteEngine.load({ runtime: rt, warmUp: false });
    const r = await e.synthesize("Nothing is left behind.", "rms");
    assert.ok(r.pcm.length > 0);
    assert.throws(() => rt.run(["--no-such-option"], { wav: true })); // a failed run cleans up too
    assert.deepEqual([...Deno.readDirSync(tmp)].map((d) => d.name), []);
  } finally {
    if (saved === undefined) Deno.env.delete("TMPDIR");
    else Deno.env.set("TMPDIR", saved);
    Deno.removeSync(tmp, { recursive: true });
  }
});

Deno.test("flite: words: false is one run and the same audio", async () => {
  const rt = await FliteRuntime.create();
  const e = await FliteEngine.load({ runtime: rt, warmUp: false });
  let runs = 0;
  const run = rt.run.bind(rt);
  rt.run = (args, opts) => {
    runs++;
    return run(args, opts);
  };
  try {
    const text = "Twelve quiet owls, then the rest.";
    const full = await e.synthesize(text, "rms");
    runs = 0;
    const bare = await e.synthesize(text, "rms", { words: false });
    assert.equal(runs, 1);
    assert.deepEqual(bare.pcm, full.pcm);
    assert.deepEqual(bare.words, []);
    assert.deepEqual(bare.phonemes, full.phonemes);
  } finally {
    await e.close();
  }
});
