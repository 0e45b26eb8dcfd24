CREATE TABLE "sip_credentials" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"tenant_id" uuid NOT NULL,
	"username" text NOT NULL,
	"realm" text NOT NULL,
	"ha1_md5" text NOT NULL,
	"ha1_sha256" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "sip_numbers" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"tenant_id" uuid NOT NULL,
	"number" text NOT NULL,
	"options" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"greeting" text,
	"room" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "sessions" ADD COLUMN "kind" text DEFAULT 'webrtc' NOT NULL;--> statement-breakpoint
ALTER TABLE "sip_credentials" ADD CONSTRAINT "sip_credentials_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "sip_numbers" ADD CONSTRAINT "sip_numbers_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "sip_credentials_realm_user_uq" ON "sip_credentials" USING btree ("realm","username");--> statement-breakpoint
CREATE INDEX "sip_credentials_tenant_idx" ON "sip_credentials" USING btree ("tenant_id");--> statement-breakpoint
CREATE UNIQUE INDEX "sip_numbers_number_uq" ON "sip_numbers" USING btree ("number");--> statement-breakpoint
CREATE INDEX "sip_numbers_tenant_idx" ON "sip_numbers" USING btree ("tenant_id");