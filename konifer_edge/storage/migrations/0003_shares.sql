-- Share links (konifer-edge's addition): a token URL that serves one asset, or the newest asset at a
-- path, without an API key. Only a SHA-256 of each token is kept; the token is shown once, at creation.
-- An asset share goes with its asset (ON DELETE CASCADE), so its link answers 404 afterwards, as the
-- peer product documents. A path share (asset_id NULL) outlives the assets at its path.

CREATE TABLE share (
    id             uuid PRIMARY KEY,
    token_hash     bytea NOT NULL,
    path           text NOT NULL,
    asset_id       uuid REFERENCES asset (id) ON DELETE CASCADE,
    entry_id       bigint,
    -- Validated transformation parameters ({} for none), re-applied on every serve.
    transformation jsonb NOT NULL DEFAULT '{}'::jsonb,
    expires_at     timestamptz,
    max_downloads  integer,
    downloads      integer NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL,
    revoked_at     timestamptz,
    CONSTRAINT share_token_hash UNIQUE (token_hash),
    CONSTRAINT share_token_hash_length CHECK (octet_length(token_hash) = 32),
    CONSTRAINT share_target CHECK ((asset_id IS NULL) = (entry_id IS NULL)),
    CONSTRAINT share_path CHECK (path LIKE '/%'),
    CONSTRAINT share_max_downloads CHECK (max_downloads IS NULL OR max_downloads > 0),
    -- The serve claims a download with a conditional UPDATE; this makes overshooting impossible even so.
    CONSTRAINT share_downloads CHECK (downloads >= 0 AND (max_downloads IS NULL OR downloads <= max_downloads))
);

CREATE INDEX share_by_path ON share (path, created_at DESC);
-- Also what keeps the cascade from scanning every share on each asset delete.
CREATE INDEX share_by_asset ON share (asset_id);
