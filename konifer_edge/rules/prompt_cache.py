"""Prompt embeddings kept in PostgreSQL, keyed by model identity and normalised prompt.

Shared by every node and worker: the first to start embeds the prompts, the others read them.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg


class PromptEmbeddingStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def load(self, model: str, prompts: Sequence[str]) -> dict[str, bytes]:
        rows = await self._pool.fetch(
            "SELECT prompt, embedding FROM rule_prompt_embedding WHERE model = $1 AND prompt = ANY($2::text[])",
            model,
            list(prompts),
        )
        return {row["prompt"]: bytes(row["embedding"]) for row in rows}

    async def save(self, model: str, embeddings: dict[str, bytes]) -> None:
        if not embeddings:
            return
        await self._pool.executemany(
            "INSERT INTO rule_prompt_embedding (model, prompt, embedding) VALUES ($1, $2, $3)"
            " ON CONFLICT (model, prompt) DO NOTHING",
            [(model, prompt, embedding) for prompt, embedding in embeddings.items()],
        )
