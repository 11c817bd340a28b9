/** An entry is fresh while it is younger than the node's TTL (DESIGN.md "TTL"). Expired = miss. */
export function isExpired(createdAt: Date, ttlMs: number, now: Date): boolean {
  return now.getTime() - createdAt.getTime() >= ttlMs;
}
