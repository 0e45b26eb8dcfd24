ALTER TABLE "tts_jobs" ADD COLUMN "speed" real DEFAULT 1 NOT NULL;--> statement-breakpoint
ALTER TABLE "tts_jobs" ADD COLUMN "ssml" boolean DEFAULT false NOT NULL;