CREATE TABLE "audit_chain_anchors" (
	"chain" text PRIMARY KEY NOT NULL,
	"seq" integer NOT NULL,
	"hash" text NOT NULL,
	"purged_at" timestamp with time zone NOT NULL,
	"mac" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "organization_settings" (
	"org_id" text PRIMARY KEY NOT NULL,
	"audit_retention_days" integer,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
DROP INDEX "audit_events_org_time_idx";--> statement-breakpoint
ALTER TABLE "organization_settings" ADD CONSTRAINT "organization_settings_org_id_organizations_id_fk" FOREIGN KEY ("org_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "audit_events_chain_time_idx" ON "audit_events" USING btree ("chain","occurred_at","id");--> statement-breakpoint
CREATE INDEX "audit_events_chain_action_time_idx" ON "audit_events" USING btree ("chain","action","occurred_at","id");--> statement-breakpoint
CREATE INDEX "audit_events_chain_actor_time_idx" ON "audit_events" USING btree ("chain","actor_id","occurred_at","id");--> statement-breakpoint
CREATE INDEX "audit_events_chain_target_time_idx" ON "audit_events" USING btree ("chain","target_type","target_id","occurred_at","id");