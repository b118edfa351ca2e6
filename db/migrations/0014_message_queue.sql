ALTER TYPE "public"."message_status" ADD VALUE 'queued';--> statement-breakpoint
ALTER TYPE "public"."message_status" ADD VALUE 'retrying';--> statement-breakpoint
ALTER TYPE "public"."message_status" ADD VALUE 'cancelled';--> statement-breakpoint
CREATE TABLE "mailbox_pace" (
	"mailbox_id" text PRIMARY KEY NOT NULL,
	"next_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "body_sealed" text;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "attempts" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "next_attempt_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "deadline_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "claim_id" text;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "claim_expires_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "last_error" text;--> statement-breakpoint
ALTER TABLE "mailbox_pace" ADD CONSTRAINT "mailbox_pace_mailbox_id_mailboxes_id_fk" FOREIGN KEY ("mailbox_id") REFERENCES "public"."mailboxes"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "messages_waiting_idx" ON "messages" USING btree ("mailbox_id","next_attempt_at") WHERE "messages"."next_attempt_at" is not null;--> statement-breakpoint
CREATE INDEX "messages_claims_idx" ON "messages" USING btree ("claim_expires_at") WHERE "messages"."claim_expires_at" is not null;