"""`POST /rule-evaluations`: score an image against rule definitions without storing anything.

Registered only while ``api.rule-evaluation.enabled`` is true; otherwise the path is an ordinary 404.
The image comes from a URL (JSON body) or a multipart ``asset`` part; the definitions are validated
as spec 06 section 3 lists, each failure a 400 naming what is wrong.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final

import msgspec
import multipart
from litestar import Response, post

from konifer_edge.config.rules import MAX_PROMPTS, MAX_RULE_NAME_LENGTH, RuleDefinition, normalise_prompt
from konifer_edge.domain.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from konifer_edge.http.routes import MULTIPART_OVERHEAD_BYTES
from konifer_edge.http.targets import AnyRequest, json_answer, runtime_of
from konifer_edge.http.uploads import decode_json, read_body
from konifer_edge.http.url_errors import url_source_api_error
from konifer_edge.observability.request_log import ROUTE_KIND, mark
from konifer_edge.rules.scoring import RuleScore
from konifer_edge.security.access import require_api_key
from konifer_edge.security.api_keys import WRITE
from konifer_edge.services.rule_evaluation import REASON, score_image
from konifer_edge.services.sources import download_source
from konifer_edge.sources.requested import UrlSource, parse_s3_object_arn
from konifer_edge.sources.s3_object import S3ObjectSource
from konifer_edge.sources.url import UrlSourceError

MAX_DEFINITIONS: Final = 10
MAX_PROMPT_LENGTH: Final = 256
METADATA_PART: Final = "metadata"
ASSET_PART: Final = "asset"
MAX_DEFINITIONS_BYTES: Final = 512 * 1024
"""Room for 10 definitions of 100 prompts of 256 characters, in JSON."""


class HttpSourceWire(msgspec.Struct, frozen=True):
    url: str | None = None


class S3SourceWire(msgspec.Struct, frozen=True):
    arn: str | None = None


class SourceWire(msgspec.Struct, frozen=True):
    http: HttpSourceWire | None = None
    s3: S3SourceWire | None = None


class DefinitionWire(msgspec.Struct, frozen=True):
    name: str
    prompts: list[str]
    threshold: float


class EvaluationRequestWire(msgspec.Struct, frozen=True):
    definitions: list[DefinitionWire] | None = None
    url: str | None = None
    source: SourceWire | None = None


class PromptScoreWire(msgspec.Struct, frozen=True):
    prompt: str
    score: float


class RuleResultWire(msgspec.Struct, frozen=True, rename="camel"):
    name: str
    threshold: float
    score: float
    matched: bool
    prompt_scores: list[PromptScoreWire]


class EvaluationResponseWire(msgspec.Struct, frozen=True):
    results: list[RuleResultWire]


@post("/rule-evaluations", status_code=200)
async def evaluate_rules(request: AnyRequest) -> Response[bytes]:
    """Score an image (JSON `url`, or multipart `metadata` + `asset`) against 1-10 rule definitions."""
    mark(request.scope, ROUTE_KIND, "rule_evaluation")
    runtime = runtime_of(request)
    # The model costs a core per call: the same key rule as writes (open until the first key exists).
    await require_api_key(request, WRITE, None, open_until_first_key=True)
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "application/json":
        body = _decode(await read_body(request.stream(), MAX_DEFINITIONS_BYTES), what="JSON body")
        definitions = validate_definitions(body.definitions)
        try:
            content = await download_source(runtime, _source(body))
        except UrlSourceError as error:
            raise url_source_api_error(error) from error
    elif media_type == "multipart/form-data":
        limit = runtime.config.source.multipart.max_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit + MAX_DEFINITIONS_BYTES + MULTIPART_OVERHEAD_BYTES:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes", reason="body_too_large")
        metadata_raw, content = await _read_parts(content_type, request.stream(), limit)
        body = _decode(metadata_raw, what="metadata part")
        if body.url is not None or body.source is not None:
            raise BadRequest("A multipart evaluation takes its image from the asset part, not a url", reason=REASON)
        definitions = validate_definitions(body.definitions)
    else:
        raise UnsupportedMediaType(
            "Send application/json with a url, or multipart/form-data with metadata and asset parts",
            reason="unsupported_request_type",
        )
    scores = await score_image(runtime, definitions, content)
    return json_answer(EvaluationResponseWire(results=[_result_wire(scores[d.name]) for d in definitions]))


def _decode(raw: bytes, *, what: str) -> EvaluationRequestWire:
    return decode_json(raw or b"{}", EvaluationRequestWire, what=what, reason=REASON)


def validate_definitions(written: list[DefinitionWire] | None) -> list[RuleDefinition]:
    """Spec 06 section 3's checks, in request order; names and prompts come back normalised."""
    if not written:
        raise BadRequest("Give between 1 and 10 rule definitions", reason=REASON)
    if len(written) > MAX_DEFINITIONS:
        raise BadRequest(f"At most {MAX_DEFINITIONS} definitions per request, got {len(written)}", reason=REASON)
    definitions: list[RuleDefinition] = []
    seen: set[str] = set()
    for index, definition in enumerate(written):
        where = f"definitions[{index}]"
        name = definition.name.strip().lower()
        if not name:
            raise BadRequest(f"{where}.name must not be blank", reason=REASON)
        if len(name) > MAX_RULE_NAME_LENGTH:
            raise BadRequest(f"{where}.name may have at most {MAX_RULE_NAME_LENGTH} characters", reason=REASON)
        if name in seen:
            raise BadRequest(f"{where}.name '{name}' is given twice (names ignore case)", reason=REASON)
        seen.add(name)
        definitions.append(
            RuleDefinition(
                name=name,
                prompts=_validate_prompts(definition.prompts, where),
                threshold=_validate_threshold(definition.threshold, where),
            )
        )
    return definitions


def _validate_prompts(written: list[str], where: str) -> tuple[str, ...]:
    if not written or len(written) > MAX_PROMPTS:
        raise BadRequest(f"{where}.prompts must hold 1 to {MAX_PROMPTS} prompts, got {len(written)}", reason=REASON)
    prompts: list[str] = []
    for prompt in written:
        if not prompt.strip():
            raise BadRequest(f"{where}.prompts: a prompt must not be blank", reason=REASON)
        if len(prompt) > MAX_PROMPT_LENGTH:
            raise BadRequest(
                f"{where}.prompts: a prompt may have at most {MAX_PROMPT_LENGTH} characters", reason=REASON
            )
        normalised = normalise_prompt(prompt)
        if normalised in prompts:
            raise BadRequest(f"{where}.prompts: '{normalised}' is given twice (prompts ignore case)", reason=REASON)
        prompts.append(normalised)
    return tuple(prompts)


def _validate_threshold(threshold: float, where: str) -> float:
    if not 0.0 <= threshold <= 1.0:
        raise BadRequest(f"{where}.threshold must be between 0.0 and 1.0, got {threshold}", reason=REASON)
    return threshold


def _source(body: EvaluationRequestWire) -> UrlSource | S3ObjectSource:
    """The image's source: `source.http.url`, `source.s3.arn` or the older top-level `url` (spec 06 section 9)."""
    source = body.source
    http_url = source.http.url if source is not None and source.http is not None else None
    arn = source.s3.arn if source is not None and source.s3 is not None else None
    given = [value for value in (http_url, arn, body.url) if value is not None]
    if not given:
        raise BadRequest("URL or S3 ARN must be supplied", reason=REASON)
    if len(given) > 1:
        raise BadRequest("Only one of source.http.url or source.s3.arn, or url can be supplied", reason=REASON)
    return parse_s3_object_arn(arn) if arn is not None else UrlSource(url=given[0])


async def _read_parts(content_type: str, chunks: AsyncIterator[bytes], max_asset_bytes: int) -> tuple[bytes, bytes]:
    """Exactly one `metadata` and one `asset` part, in either order; parts of other names are skipped."""
    _, options = multipart.parse_options_header(content_type)
    boundary = options.get("boundary")
    if not boundary:
        raise BadRequest("The multipart body has no boundary", reason="invalid_multipart")
    parser = multipart.PushMultipartParser(boundary, max_segment_count=8, strict=False)
    parts: dict[str, bytearray] = {}
    current: bytearray | None = None
    limit = 0
    name = ""
    try:
        async for chunk in chunks:
            for event in parser.parse(chunk):
                if isinstance(event, multipart.MultipartSegment):
                    name = event.name
                    if name not in (METADATA_PART, ASSET_PART):
                        current = None  # ignored, as Konifer ignores other parts
                        continue
                    if name in parts:
                        raise BadRequest(f"More than one '{name}' part", reason="invalid_multipart")
                    current = parts[name] = bytearray()
                    limit = MAX_DEFINITIONS_BYTES if name == METADATA_PART else max_asset_bytes
                elif event is None:
                    current = None
                elif current is not None:
                    current += event
                    if len(current) > limit:
                        raise PayloadTooLarge(f"The {name} part is larger than {limit} bytes", reason="body_too_large")
        parser.close()
    except multipart.MultipartError as error:
        raise BadRequest(f"The multipart body is malformed: {error}", reason="invalid_multipart") from error
    if METADATA_PART not in parts:
        raise BadRequest("The multipart body has no 'metadata' part", reason="missing_metadata")
    if not parts.get(ASSET_PART):
        raise BadRequest("The multipart body has no 'asset' part", reason="missing_asset")
    return bytes(parts[METADATA_PART]), bytes(parts[ASSET_PART])


def _result_wire(score: RuleScore) -> RuleResultWire:
    return RuleResultWire(
        name=score.name,
        threshold=score.threshold,
        score=score.score,
        matched=score.matched,
        prompt_scores=[PromptScoreWire(prompt=p.prompt, score=p.score) for p in score.prompt_scores],
    )


RULE_EVALUATION_ROUTES = [evaluate_rules]
