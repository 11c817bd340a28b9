CREATE TABLE "workflow_specs" (
	"digest" text PRIMARY KEY NOT NULL,
	"spec" json NOT NULL,
	"created_at" timestamp (3) with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "runs" ALTER COLUMN "spec" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "spec_digest" text;