/** A small SSE reader for room viewers in tests and benches: bytes in, `{seq, type, data}` out. */
export interface SseRoomEvent {
  seq: number;
  type: string;
  data: Record<string, unknown>;
  /** performance.now() when the event's frame was parsed. */
  at: number;
}

export function roomEventParser(onEvent: (e: SseRoomEvent) => void): (chunk: Uint8Array) => void {
  const dec = new TextDecoder();
  let buf = "";
  return (chunk) => {
    buf += dec.decode(chunk, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const frame = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let id = "", type = "message", data = "";
      for (const line of frame.split("\n")) {
        if (line.startsWith("id: ")) id = line.slice(4);
        else if (line.startsWith("event: ")) type = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      if (id && data) onEvent({ seq: Number(id), type, data: JSON.parse(data), at: performance.now() });
    }
  };
}
