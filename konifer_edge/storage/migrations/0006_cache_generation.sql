-- Per-path cache generations shared by nodes without Redis (cache/postgres_generations.py).
-- Paths hash into slots; a row holds how often its slot was bumped. Notifications on the
-- channel konifer_cache_generation carry each bump to the other nodes at once; this table is
-- what a node re-reads after it missed some.
CREATE TABLE cache_generation (
    slot integer PRIMARY KEY,
    generation bigint NOT NULL
);
