CREATE INDEX "api_keys_org_created_idx" ON "api_keys" USING btree ("org_id","created_at","id");--> statement-breakpoint
CREATE INDEX "data_requests_org_received_idx" ON "data_requests" USING btree ("org_id","received_at","id");--> statement-breakpoint
CREATE INDEX "invitations_org_created_idx" ON "invitations" USING btree ("org_id","created_at","id");--> statement-breakpoint
CREATE INDEX "invitations_email_created_idx" ON "invitations" USING btree ("email","created_at","id");--> statement-breakpoint
CREATE INDEX "memberships_org_created_idx" ON "memberships" USING btree ("org_id","created_at","user_id");