DROP INDEX "tts_chunks_claim_idx";--> statement-breakpoint
DROP INDEX "tts_jobs_runnable_idx";--> statement-breakpoint
CREATE INDEX "tts_jobs_live_idx" ON "tts_jobs" USING btree ("priority","tenant_id") WHERE status in ('queued', 'running');--> statement-breakpoint
-- room on each page for HOT updates of the per-claim counters (chunks_queued, chars_claimed, chunks_done…)
ALTER TABLE "tts_jobs" SET (fillfactor = 50);
