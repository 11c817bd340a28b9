ALTER TABLE "cache_entries" ADD COLUMN "duration_ms" bigint;--> statement-breakpoint
ALTER TABLE "node_executions" ADD COLUMN "compute_ms" bigint;--> statement-breakpoint
ALTER TABLE "node_executions" ADD COLUMN "saved_ms" bigint;--> statement-breakpoint
ALTER TABLE "node_executions" ADD COLUMN "cutoff_hint" json;