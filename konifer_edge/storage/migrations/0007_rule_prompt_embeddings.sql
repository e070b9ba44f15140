-- Text embeddings of upload-rule prompts, so a restart does not run the text model again.
-- model identifies the text tower and tokenizer by content; prompt is the normalised prompt
-- (trimmed, lower case, without the caption prefix); embedding is little-endian float32.
CREATE TABLE rule_prompt_embedding (
    model text NOT NULL,
    prompt text NOT NULL,
    embedding bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model, prompt)
);
