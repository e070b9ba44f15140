"""Scoring uploads against rules: one image embedding per upload, prompt embeddings prepared ahead.

At start-up the model is loaded (refusing to start when it cannot be) and every configured prompt is
embedded in the background: read from PostgreSQL where a previous start cached it, otherwise run
through the text model in batches of 32 and cached. An upload that needs prompts waits for that
warm-up; prompts first seen in the evaluation API are embedded on demand and kept in memory only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any, Final

from konifer_edge.config.rules import RuleDefinition, RuleInferenceSettings, UploadRuleset
from konifer_edge.domain.errors import ServiceUnavailable
from konifer_edge.observability import metrics
from konifer_edge.rules.decision import Decision, decide
from konifer_edge.rules.model import SiglipModel, find_model_files
from konifer_edge.rules.pool import InferencePool
from konifer_edge.rules.prompt_cache import PromptEmbeddingStore
from konifer_edge.rules.scoring import RuleScore, score_rules

log = logging.getLogger(__name__)

PROMPT_BATCH: Final = 32
ON_DEMAND_PROMPTS: Final = 4096
"""Prompts from the evaluation API kept in memory; operators trying wordings stay well below it."""


class RuleEngine:
    def __init__(
        self,
        model: SiglipModel,
        pool: InferencePool,
        store: PromptEmbeddingStore,
        definitions: dict[str, RuleDefinition],
    ) -> None:
        self.model = model
        self.pool = pool
        self.definitions = definitions
        self._store = store
        self._configured: dict[str, Any] = {}
        self._on_demand: OrderedDict[str, Any] = OrderedDict()
        self._warm_up: asyncio.Future[None] | None = None

    @classmethod
    async def start(
        cls, settings: RuleInferenceSettings, definitions: dict[str, RuleDefinition], store: PromptEmbeddingStore
    ) -> RuleEngine:
        """Load the model (ModelUnavailable when it cannot be) and begin embedding the configured prompts."""
        files = find_model_files(settings)
        pool = InferencePool(settings.workers, settings.queue_size, settings.timeout)
        try:
            model = await pool.run_unbounded(SiglipModel, files, settings.threads)
        except BaseException:
            pool.shutdown()
            raise
        engine = cls(model, pool, store, definitions)
        for definition in definitions.values():
            for result in ("matched", "not_matched"):
                metrics.RULE_RESULTS.labels(definition.name, result)
            for outcome in ("accepted", "rejected"):
                metrics.RULE_DECISIONS.labels(outcome, definition.name)
        engine._warm_up = asyncio.ensure_future(engine._warm(_configured_prompts(definitions.values())))
        engine._warm_up.add_done_callback(_report_warm_up)
        return engine

    async def wait_warm(self) -> None:
        """Wait until every configured prompt has its embedding (tests and readiness)."""
        if self._warm_up is not None:
            await asyncio.shield(self._warm_up)

    async def _warm(self, prompts: list[str]) -> None:
        identity = self.model.identity
        started = time.perf_counter()
        try:
            cached = await self._store.load(identity, prompts)
        except Exception as error:  # the cache is an optimisation: without it the text model runs
            log.warning("cannot read cached prompt embeddings (%r); embedding every prompt", error)
            cached = {}
        for prompt, data in cached.items():
            self._configured[prompt] = self.model.embedding_from_bytes(data)
        missing = [prompt for prompt in prompts if prompt not in self._configured]
        computed: dict[str, bytes] = {}
        for batch in _batches(missing):
            embeddings = await self.pool.run_unbounded(self._embed_prompts, batch)
            for prompt, embedding in zip(batch, embeddings, strict=True):
                self._configured[prompt] = embedding
                computed[prompt] = self.model.embedding_bytes(embedding)
        try:
            await self._store.save(identity, computed)
        except Exception as error:
            log.warning("cannot cache prompt embeddings (%r); the next start embeds them again", error)
        log.info(
            "upload rules ready: %d prompt(s), %d from the cache, %d embedded, in %.2fs",
            len(prompts),
            len(prompts) - len(missing),
            len(missing),
            time.perf_counter() - started,
        )

    def _embed_prompts(self, prompts: Sequence[str]) -> Any:
        with _timed("text"):
            return self.model.embed_prompts(prompts)

    def _embed_image(self, pixels: bytes) -> Any:
        with _timed("image"):
            return self.model.embed_image(pixels)

    async def _prompt_embeddings(self, prompts: Sequence[str]) -> list[Any]:
        if self._warm_up is not None and not self._warm_up.done():
            await asyncio.shield(self._warm_up)
        if self._warm_up is not None and not self._warm_up.cancelled() and self._warm_up.exception() is not None:
            raise ServiceUnavailable(
                "Upload rules are not ready: their prompts could not be embedded", reason="rules_unavailable"
            )
        unknown = [prompt for prompt in dict.fromkeys(prompts) if self._known(prompt) is None]
        for batch in _batches(unknown):
            embeddings = await self.pool.run(self._embed_prompts, batch)
            for prompt, embedding in zip(batch, embeddings, strict=True):
                self._remember(prompt, embedding)
        found = [self._known(prompt) for prompt in prompts]
        # A prompt evicted between the two steps by a flood of others is embedded once more.
        return [
            embedding if embedding is not None else await self._embed_one(prompt)
            for prompt, embedding in zip(prompts, found, strict=True)
        ]

    async def _embed_one(self, prompt: str) -> Any:
        (embedding,) = await self.pool.run(self._embed_prompts, [prompt])
        self._remember(prompt, embedding)
        return embedding

    def _known(self, prompt: str) -> Any:
        embedding = self._configured.get(prompt)
        if embedding is None:
            embedding = self._on_demand.get(prompt)
            if embedding is not None:
                self._on_demand.move_to_end(prompt)
        return embedding

    def _remember(self, prompt: str, embedding: Any) -> None:
        self._on_demand[prompt] = embedding
        while len(self._on_demand) > ON_DEMAND_PROMPTS:
            self._on_demand.popitem(last=False)

    async def score(self, definitions: Sequence[RuleDefinition], pixels: bytes) -> dict[str, RuleScore]:
        """Every definition's score against one image: the image is embedded exactly once."""
        prompts = _configured_prompts(definitions)
        image = await self.pool.run(self._embed_image, pixels)
        embeddings = await self._prompt_embeddings(prompts)
        similarities = dict(zip(prompts, self.model.similarities(image, embeddings), strict=True))
        return score_rules(definitions, similarities)

    async def decide(self, ruleset: UploadRuleset, pixels: bytes) -> Decision:
        names = dict.fromkeys(reference.rule for reference in ruleset.evaluated_rules)
        scores = await self.score([self.definitions[name] for name in names], pixels)
        for score in scores.values():
            metrics.RULE_RESULTS.labels(score.name, "matched" if score.matched else "not_matched").inc()
        return decide(ruleset, scores)

    def shutdown(self) -> None:
        if self._warm_up is not None:
            self._warm_up.cancel()
        self.pool.shutdown()


def _report_warm_up(warm_up: asyncio.Future[None]) -> None:
    if not warm_up.cancelled() and warm_up.exception() is not None:
        # Uploads under rulesets are answered 503 from now on: say why once, loudly.
        log.error("upload rules cannot embed their prompts", exc_info=warm_up.exception())


def _configured_prompts(definitions: Iterable[RuleDefinition]) -> list[str]:
    return list(dict.fromkeys(prompt for definition in definitions for prompt in definition.prompts))


def _batches(prompts: Sequence[str]) -> list[Sequence[str]]:
    return [prompts[start : start + PROMPT_BATCH] for start in range(0, len(prompts), PROMPT_BATCH)]


class _timed:
    """Inference time by tower, observed in the worker thread that ran it."""

    def __init__(self, tower: str) -> None:
        self._tower = tower
        self._started = 0.0

    def __enter__(self) -> None:
        self._started = time.perf_counter()

    def __exit__(self, *_: object) -> None:
        metrics.RULE_INFERENCE_DURATION.labels(self._tower).observe(time.perf_counter() - self._started)
