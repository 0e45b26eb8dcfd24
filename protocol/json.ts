/**
 * JSON text from clients (API bodies, control messages): `JSON.parse` keeps a `__proto__` key as an own
 * property, which schema validation does not see as an unknown key and which code that copies objects would
 * turn into a prototype. Such a key is refused wherever it appears.
 */

/** The text has a `__proto__` key. */
export class ForbiddenKeyError extends Error {
  constructor() {
    super('"__proto__" is not an accepted key');
    this.name = "ForbiddenKeyError";
  }
}

/** `JSON.parse`, refusing `__proto__` keys at any depth (ForbiddenKeyError); SyntaxError as JSON.parse. */
export function parseClientJson(text: string): unknown {
  return JSON.parse(text, (key, value) => {
    if (key === "__proto__") throw new ForbiddenKeyError();
    return value;
  });
}
