ALTER TABLE "transcript_segments" ADD COLUMN "words" jsonb;--> statement-breakpoint
ALTER TABLE "transcript_segments" ADD COLUMN "confidence" real;