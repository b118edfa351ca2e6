ALTER TABLE "messages" ADD COLUMN "personal_removed_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "organization_settings" ADD COLUMN "message_personal_retention_days" integer DEFAULT 90;--> statement-breakpoint
ALTER TABLE "organization_settings" ADD COLUMN "audit_network_retention_days" integer DEFAULT 30;--> statement-breakpoint
CREATE INDEX "audit_events_network_kept_idx" ON "audit_events" USING btree ("chain","occurred_at","id") WHERE "audit_events"."ip" is not null or "audit_events"."user_agent" is not null;--> statement-breakpoint
CREATE INDEX "messages_personal_kept_idx" ON "messages" USING btree ("org_id","created_at") WHERE "messages"."personal_removed_at" is null;