-- Listing under a prefix walks every matching path in one order, so it needs the order
-- across paths; listing at one path uses asset_by_path_created / asset_by_path_modified.
-- (path, entry_id) makes the key unique, which keyset pagination relies on.
CREATE INDEX asset_by_created ON asset (created_at, path, entry_id);
CREATE INDEX asset_by_modified ON asset (modified_at, path, entry_id);
