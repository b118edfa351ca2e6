ALTER TABLE "mailboxes" ADD COLUMN "provider_subject" text;--> statement-breakpoint
ALTER TABLE "oauth_transactions" ADD COLUMN "mailbox_id" text;--> statement-breakpoint
ALTER TABLE "oauth_transactions" ADD CONSTRAINT "oauth_transactions_mailbox_id_mailboxes_id_fk" FOREIGN KEY ("mailbox_id") REFERENCES "public"."mailboxes"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "mailboxes_org_provider_subject_idx" ON "mailboxes" USING btree ("org_id","provider","provider_subject");--> statement-breakpoint
-- The demo provider's subject is the account's lowercased address, which is what the address
-- column holds; other providers' rows stay null until their next connect adopts them by address.
UPDATE "mailboxes" SET "provider_subject" = "address" WHERE "provider" = 'demo' AND "provider_subject" IS NULL;
