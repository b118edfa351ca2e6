CREATE TABLE "message_claims" (
	"message_id" text PRIMARY KEY NOT NULL,
	"expires_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
-- The leases of attempts under way move with them (hand-written: drizzle-kit drops the column).
INSERT INTO "message_claims" ("message_id", "expires_at")
  SELECT "id", "claim_expires_at" FROM "messages" WHERE "claim_expires_at" IS NOT NULL;--> statement-breakpoint
DROP INDEX "messages_claims_idx";--> statement-breakpoint
CREATE INDEX "message_claims_expires_idx" ON "message_claims" USING btree ("expires_at");--> statement-breakpoint
ALTER TABLE "messages" DROP COLUMN "claim_expires_at";