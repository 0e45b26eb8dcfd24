import assert from "node:assert/strict";
import { ForbiddenKeyError, parseClientJson } from "./json.ts";
import { parseControlMessage } from "./session_messages.ts";

Deno.test("client JSON: __proto__ keys are refused at any depth; everything else parses as JSON.parse", () => {
  for (
    const t of ['{"__proto__":{}}', '{"a":[{"__proto__":1}]}', '{"options":{"__proto__":{"mode":"echo"}}}']
  ) {
    assert.throws(() => parseClientJson(t), ForbiddenKeyError, t);
  }
  assert.deepEqual(parseClientJson('{"a":[1,{"b":"__proto__"}],"proto":2}'), {
    a: [1, { b: "__proto__" }],
    proto: 2,
  });
  assert.throws(() => parseClientJson("{"), SyntaxError);
  const m = parseControlMessage('{"type":"say","text":"hi","__proto__":{"voice":"x"}}');
  assert.deepEqual(m, { ok: false, error: '"__proto__" is not an accepted key' });
});
