ALTER TABLE "tts_chunks" ADD COLUMN "claimed_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "tts_jobs" ADD COLUMN "chars_total" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "tts_jobs" ADD COLUMN "chars_claimed" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "tts_jobs" ADD COLUMN "chunks_queued" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
CREATE INDEX "tts_chunks_lease_idx" ON "tts_chunks" USING btree ("lease_until") WHERE status = 'running';--> statement-breakpoint
CREATE INDEX "tts_jobs_runnable_idx" ON "tts_jobs" USING btree ("priority","tenant_id") WHERE chunks_queued > 0;