"""The first full look at an upload: its header, a decode of every byte, placeholders, preprocessing.

These are the first calls that hand client bytes to libvips' native decoders, so they run in a
decode process (imaging/isolation.py), never in the server worker. Everything here is a pure
function of the bytes and the job; the answer is small unless preprocessing made new bytes.
"""

from __future__ import annotations

import hashlib

import msgspec

from konifer_edge.domain.errors import BadRequest
from konifer_edge.domain.models import Attributes, Lqip
from konifer_edge.domain.transformation import RequestedTransformation, is_identity, plan_transformation
from konifer_edge.imaging.lqip import compute_lqips, decode_thumbnail
from konifer_edge.imaging.model_pixels import model_pixels
from konifer_edge.imaging.probe import ProbedImage, ProbeLimits, probe
from konifer_edge.imaging.transform import render
from konifer_edge.imaging.vips import VIPS_ERRORS


class Preprocessing(msgspec.Struct, frozen=True):
    """A path's preprocessing: its parameters, parsed, and the largest original it keeps as it is."""

    requested: RequestedTransformation
    max_width: int | None = None
    max_height: int | None = None


class OriginalJob(msgspec.Struct, frozen=True):
    limits: ProbeLimits
    lqip_kinds: tuple[str, ...] = ()
    preprocessing: Preprocessing | None = None
    rule_pixels: bool = False
    """Whether upload rules score this upload: then the model's view of it is made from the original."""


class ExaminedOriginal(msgspec.Struct, frozen=True):
    probed: ProbedImage
    """What is stored: the upload's own format and attributes, or the preprocessed image's."""
    content_hash: str
    lqip: Lqip
    processed: bytes | None = None
    """The preprocessed image; None when the upload is stored as it came."""
    rule_pixels: bytes | None = None
    """The upload as the rules model sees it (imaging/model_pixels.py), when the job asked for it."""


def examine_original(content: bytes, job: OriginalJob) -> ExaminedOriginal:
    """Probe the upload, decode all of it, and preprocess it where its path says so."""
    probed = probe(content, job.limits)
    try:
        thumbnail = decode_thumbnail(content, probed.attributes.page_count)
    except VIPS_ERRORS as error:
        raise BadRequest(
            f"The {probed.format.short_name} image cannot be decoded: it is damaged or truncated",
            reason="undecodable_image",
        ) from error
    # Rules score the upload as it came, never its preprocessed form (spec 06 section 1).
    rule_pixels = _rule_pixels(content, probed) if job.rule_pixels else None
    if job.preprocessing is not None:
        requested = _preprocessing_request(job.preprocessing, probed.attributes)
        output_format = requested.format or probed.format
        plan = plan_transformation(requested, probed.attributes, output_format)
        if not is_identity(plan, probed.attributes, requested):
            rendered = render(content, probed.attributes.page_count, plan, job.lqip_kinds)
            return ExaminedOriginal(
                probed=ProbedImage(format=output_format, attributes=rendered.attributes),
                content_hash=hashlib.sha256(rendered.data).hexdigest(),
                lqip=rendered.lqip,
                processed=rendered.data,
                rule_pixels=rule_pixels,
            )
    return ExaminedOriginal(
        probed=probed,
        content_hash=hashlib.sha256(content).hexdigest(),
        lqip=compute_lqips(thumbnail, job.lqip_kinds),
        rule_pixels=rule_pixels,
    )


def _rule_pixels(content: bytes, probed: ProbedImage) -> bytes:
    try:
        return model_pixels(content)
    except VIPS_ERRORS as error:
        raise BadRequest(
            f"The {probed.format.short_name} image cannot be decoded: it is damaged or truncated",
            reason="undecodable_image",
        ) from error


def _preprocessing_request(preprocessing: Preprocessing, original: Attributes) -> RequestedTransformation:
    requested = preprocessing.requested
    if requested.width is not None or requested.height is not None:
        return requested  # explicit sizes win over the maxima
    max_width, max_height = preprocessing.max_width, preprocessing.max_height
    width = max_width if max_width is not None and original.width > max_width else None
    height = max_height if max_height is not None and original.height > max_height else None
    return msgspec.structs.replace(requested, width=width, height=height)
