-- Assets, their stored renditions, and the queue of objects to remove after a delete.

CREATE TABLE asset_path (
    path          text PRIMARY KEY,
    last_entry_id bigint NOT NULL
);

CREATE TABLE asset (
    id          uuid PRIMARY KEY,
    path        text NOT NULL,
    entry_id    bigint NOT NULL,
    alt         text,
    labels      jsonb NOT NULL DEFAULT '{}'::jsonb,
    tags        text[] NOT NULL DEFAULT '{}',
    source      text NOT NULL,
    source_url  text,
    created_at  timestamptz NOT NULL,
    modified_at timestamptz NOT NULL,
    CONSTRAINT asset_path_entry UNIQUE (path, entry_id)
);

-- Newest-first reads at one path walk these indexes backwards from the top.
CREATE INDEX asset_by_path_created ON asset (path, created_at DESC, entry_id DESC);
CREATE INDEX asset_by_path_modified ON asset (path, modified_at DESC, entry_id DESC);
-- Recursive operations are prefix scans: the embedded PostgreSQL has no ltree.
CREATE INDEX asset_by_path_prefix ON asset (path text_pattern_ops);
CREATE INDEX asset_by_labels ON asset USING gin (labels jsonb_path_ops);

CREATE TABLE variant (
    id                 uuid PRIMARY KEY,
    asset_id           uuid NOT NULL REFERENCES asset (id) ON DELETE CASCADE,
    transformation_key text NOT NULL,
    transformation     jsonb,
    bucket             text NOT NULL,
    store_key          text NOT NULL,
    width              integer NOT NULL,
    height             integer NOT NULL,
    format             text NOT NULL,
    page_count         integer NOT NULL,
    loop               integer NOT NULL,
    content_type       text NOT NULL,
    size_bytes         bigint NOT NULL,
    content_hash       text NOT NULL,
    lqip               jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at         timestamptz NOT NULL,
    last_accessed_at   timestamptz NOT NULL,
    CONSTRAINT variant_asset_transformation UNIQUE (asset_id, transformation_key)
);

CREATE TABLE pending_object_deletion (
    id              bigserial PRIMARY KEY,
    bucket          text NOT NULL,
    store_key       text NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text
);
CREATE INDEX pending_object_deletion_due ON pending_object_deletion (next_attempt_at);
