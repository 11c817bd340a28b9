CREATE TABLE "cache_reservations" (
	"key" text NOT NULL,
	"kind" text NOT NULL,
	"owner" text NOT NULL,
	"run_id" text NOT NULL,
	"node_id" text NOT NULL,
	"expires_at" timestamp (3) with time zone NOT NULL,
	CONSTRAINT "cache_reservations_key_kind_pk" PRIMARY KEY("key","kind")
);
--> statement-breakpoint
ALTER TABLE "node_executions" ADD COLUMN "waited_for" json;--> statement-breakpoint
CREATE INDEX "cache_reservations_owner_idx" ON "cache_reservations" USING btree ("owner");