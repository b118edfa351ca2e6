CREATE TABLE "smtp_connection_slots" (
	"mailbox_id" text NOT NULL,
	"slot" integer NOT NULL,
	"holder" text NOT NULL,
	"lease_until" timestamp with time zone NOT NULL,
	CONSTRAINT "smtp_connection_slots_mailbox_id_slot_pk" PRIMARY KEY("mailbox_id","slot")
);
--> statement-breakpoint
ALTER TABLE "mailboxes" ADD COLUMN "limited_until" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "smtp_connection_slots" ADD CONSTRAINT "smtp_connection_slots_mailbox_id_mailboxes_id_fk" FOREIGN KEY ("mailbox_id") REFERENCES "public"."mailboxes"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "smtp_connection_slots_holder_idx" ON "smtp_connection_slots" USING btree ("holder");