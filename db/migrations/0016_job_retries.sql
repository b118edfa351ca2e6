ALTER TABLE "job_items" ADD COLUMN "attempts" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "runs" integer DEFAULT 0 NOT NULL;