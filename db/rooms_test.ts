import assert from "node:assert/strict";
import { withTestDatabase } from "./testing.ts";
import { tenants } from "./schema.ts";
import { registerNode } from "./nodes.ts";
import {
  appendRoomEvent,
  claimRoomNode,
  createRoom,
  createTrack,
  deleteRoom,
  deleteTrack,
  roomEventsAfter,
  roomLastSeq,
  roomOfTenant,
  trackOfTenant,
  trackPcm,
} from "./rooms.ts";
import type { RoomStateEvent } from "../protocol/room_messages.ts";
import { ROOM_EVENTS_CHANNEL } from "../protocol/rooms.ts";

Deno.test("rooms: tenant-owned rows, placement agreed once, events in seq order with NOTIFY, tracks round-trip", async () => {
  await withTestDatabase(async (db) => {
    const [t] = await db.db.insert(tenants).values({ name: "t" }).returning();
    const [other] = await db.db.insert(tenants).values({ name: "o" }).returning();
    const room = await createRoom(db, { tenantId: t.id, name: "talk", options: { idle_after_ms: 1000 } });
    assert.equal(await roomOfTenant(db, other.id, room.id), null, "another tenant's room looks missing");

    // placement: the first claim wins while its node is live; a second node sees the winner
    await registerNode(db, { id: "n1", url: "http://n1", capacity: 10, version: "t" });
    await registerNode(db, { id: "n2", url: "http://n2", capacity: 10, version: "t" });
    assert.equal(await claimRoomNode(db, room.id, "n1", 60_000), "n1");
    assert.equal(await claimRoomNode(db, room.id, "n2", 60_000), "n1");
    // n1's heartbeat is older than the timeout → the room moves
    assert.equal(await claimRoomNode(db, room.id, "n2", 0), "n2");

    // events: stored by seq, NOTIFY '<room>:<seq>' after commit, replay after a seq
    const notes: string[] = [];
    const unlisten = await db.listen(ROOM_EVENTS_CHANNEL, (p) => notes.push(p));
    const ev = (seq: number): RoomStateEvent => ({
      type: "room",
      seq,
      room_id: room.id,
      publisher: null,
      idle: true,
      default_source: "speaker",
    });
    for (let s = 1; s <= 3; s++) await appendRoomEvent(db, room.id, ev(s));
    await appendRoomEvent(db, room.id, ev(2)); // a retried write is ignored
    assert.deepEqual((await roomEventsAfter(db, room.id, 1)).map((e) => e.seq), [2, 3]);
    assert.deepEqual((await roomEventsAfter(db, room.id, 0, 10, 2)).map((e) => e.seq), [1, 2]);
    assert.equal(await roomLastSeq(db, room.id), 3);
    assert.equal(Number((await roomOfTenant(db, t.id, room.id))!.lastSeq), 3);
    for (let i = 0; i < 50 && notes.length < 3; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(notes.slice(0, 3), [1, 2, 3].map((s) => `${room.id}:${s}`));
    await unlisten();

    assert.equal(await deleteRoom(db, other.id, room.id), false);
    assert.equal(await deleteRoom(db, t.id, room.id), true);
    assert.equal(await roomOfTenant(db, t.id, room.id), null);
    assert.equal(await claimRoomNode(db, room.id, "n1", 60_000), null, "a deleted room is never placed");

    // tracks: PCM bytes round-trip as Int16; tenant-scoped
    const pcm = new Int16Array([0, 1, -1, 32767, -32768, 1234]);
    const track = await createTrack(db, {
      tenantId: t.id,
      name: "bed",
      pcm: new Uint8Array(pcm.buffer),
      durationMs: 0,
      source: "PCM 16-bit, 1 channel, 48000 Hz",
    });
    assert.equal(track.sizeBytes, 12);
    assert.equal(await trackOfTenant(db, other.id, track.id), null);
    assert.deepEqual([...(await trackPcm(db, t.id, track.id))!], [...pcm]);
    assert.equal(await deleteTrack(db, other.id, track.id), false);
    assert.equal(await deleteTrack(db, t.id, track.id), true);
    assert.equal(await trackPcm(db, t.id, track.id), null);
  });
});
