CREATE TABLE "encryption_keys" (
	"id" text PRIMARY KEY NOT NULL,
	"first_seen_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "instances" (
	"id" text PRIMARY KEY NOT NULL,
	"host" text NOT NULL,
	"pid" integer NOT NULL,
	"started_at" timestamp with time zone NOT NULL,
	"last_seen_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "organization_settings" ADD COLUMN "google_publishing_status" text;--> statement-breakpoint
ALTER TABLE "organization_settings" ADD COLUMN "google_secret_expires_on" date;--> statement-breakpoint
ALTER TABLE "organization_settings" ADD COLUMN "microsoft_secret_expires_on" date;