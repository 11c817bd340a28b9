CREATE TABLE "cache_entries" (
	"key" text NOT NULL,
	"kind" text NOT NULL,
	"project" text NOT NULL,
	"domain" text NOT NULL,
	"task" text NOT NULL,
	"parts" json NOT NULL,
	"value" json NOT NULL,
	"value_hash" text,
	"checksum" text NOT NULL,
	"run_id" text NOT NULL,
	"node_id" text NOT NULL,
	"created_at" timestamp (3) with time zone NOT NULL,
	CONSTRAINT "cache_entries_key_kind_pk" PRIMARY KEY("key","kind")
);
--> statement-breakpoint
CREATE TABLE "node_executions" (
	"run_id" text NOT NULL,
	"node_id" text NOT NULL,
	"task" text NOT NULL,
	"phase" text NOT NULL,
	"cache_status" text,
	"cache_reason" text,
	"cache_key" text,
	"cache_key_parts" json,
	"attempts" integer NOT NULL,
	"inputs" json,
	"output" json,
	"error" json,
	"started_at" timestamp (3) with time zone,
	"finished_at" timestamp (3) with time zone,
	"sub_workflow" json,
	CONSTRAINT "node_executions_run_id_node_id_pk" PRIMARY KEY("run_id","node_id")
);
--> statement-breakpoint
CREATE TABLE "runs" (
	"id" text PRIMARY KEY NOT NULL,
	"workflow" text NOT NULL,
	"project" text NOT NULL,
	"domain" text NOT NULL,
	"spec" json NOT NULL,
	"inputs" json NOT NULL,
	"options" json NOT NULL,
	"status" text NOT NULL,
	"outputs" json,
	"error" json,
	"version" integer NOT NULL,
	"created_at" timestamp (3) with time zone NOT NULL,
	"updated_at" timestamp (3) with time zone NOT NULL,
	"finished_at" timestamp (3) with time zone
);
--> statement-breakpoint
CREATE INDEX "cache_entries_task_idx" ON "cache_entries" USING btree ("task","created_at" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "cache_entries_run_id_idx" ON "cache_entries" USING btree ("run_id");--> statement-breakpoint
CREATE INDEX "cache_entries_created_at_idx" ON "cache_entries" USING btree ("created_at" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "runs_created_at_idx" ON "runs" USING btree ("created_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "runs_workflow_created_at_idx" ON "runs" USING btree ("workflow","created_at" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "runs_status_created_at_idx" ON "runs" USING btree ("status","created_at" DESC NULLS LAST);