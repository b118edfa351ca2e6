ALTER TABLE "oauth_transactions" ADD COLUMN "grant_revoked_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "oauth_transactions" ADD COLUMN "grant_subject" text;