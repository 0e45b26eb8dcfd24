ALTER TABLE "tts_chunks" ADD COLUMN "codec" text DEFAULT 'pcm' NOT NULL;--> statement-breakpoint
ALTER TABLE "tts_chunks" ADD COLUMN "samples" integer;