-- API keys (konifer-edge's addition): only a SHA-256 of each token is kept, with a short
-- non-secret prefix of it for telling keys apart. A revoked key keeps its row, so revoking
-- never makes "no key exists" true again (anonymous writes stay refused).

CREATE TABLE api_key (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash  bytea NOT NULL,
    prefix      text NOT NULL,
    name        text,
    scopes      text[] NOT NULL,
    path_prefix text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    CONSTRAINT api_key_token_hash UNIQUE (token_hash),
    CONSTRAINT api_key_token_hash_length CHECK (octet_length(token_hash) = 32),
    CONSTRAINT api_key_scopes CHECK (
        cardinality(scopes) > 0
        AND scopes <@ ARRAY['assets:read', 'assets:write', 'assets:admin']::text[]
    ),
    CONSTRAINT api_key_path_prefix CHECK (path_prefix IS NULL OR path_prefix LIKE '/%')
);
