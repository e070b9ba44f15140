"""The SigLIP2 model on ONNX Runtime: finding its files, loading it, and embedding text and pixels.

This is the only module that imports the ``rules`` extra (onnxruntime, tokenizers, numpy), and only
when rules are configured. Missing files or packages stop start-up with a message naming them:
configured rules that silently accepted everything would be worse than no service.

Both sessions are thread-safe for ``run``; the inference pool (rules/pool.py) bounds how many run at once.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from konifer_edge.config.rules import RuleInferenceSettings
from konifer_edge.imaging.model_pixels import CHANNELS, IMAGE_SIZE, PIXEL_BYTES
from konifer_edge.rules.text import SEQUENCE_LENGTH, model_text

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Embeddings = npt.NDArray[np.float32]
else:
    Embeddings = Any

VISION_MODEL: Final = "vision_model.onnx"
TEXT_MODEL: Final = "text_model.onnx"
TOKENIZER: Final = "tokenizer.json"
MODEL_FILES: Final = (VISION_MODEL, TEXT_MODEL, TOKENIZER)
# Konifer's download script puts the files side by side; the export's own repository keeps the two
# ONNX files in onnx/. Either layout is read.
_SUBDIRECTORIES: Final = (Path("."), Path("onnx"))
REQUIRED_PACKAGES: Final = ("onnxruntime", "tokenizers", "numpy")

PIXEL_INPUT: Final = "pixel_values"
IDS_INPUT: Final = "input_ids"
MASK_INPUT: Final = "attention_mask"
IMAGE_OUTPUT: Final = "image_embeds"
TEXT_OUTPUT: Final = "text_embeds"
POOLED_OUTPUT: Final = "pooler_output"
PAD_TOKEN: Final = "<pad>"


class ModelUnavailable(Exception):
    """The model cannot be used as configured; the message names the file or package to provide."""


def import_rules_packages() -> dict[str, ModuleType]:
    modules: dict[str, ModuleType] = {}
    for package in REQUIRED_PACKAGES:
        try:
            modules[package] = importlib.import_module(package)
        except ImportError as error:
            raise ModuleNotFoundError(
                f"upload rules need the Python package '{package}', which is not installed: "
                f"install konifer-edge[rules] (or pip install {package})"
            ) from error
    return modules


class ModelFiles(NamedTuple):
    vision: Path
    text: Path
    tokenizer: Path


def _locate(directory: Path, name: str) -> Path | None:
    for subdirectory in _SUBDIRECTORIES:
        candidate = directory / subdirectory / name
        if candidate.is_file():
            return candidate
    return None


def find_model_files(settings: RuleInferenceSettings) -> ModelFiles:
    """The first directory holding all three files; otherwise name what is missing where."""
    directories = settings.model_directories
    for directory in directories:
        found = [_locate(directory, name) for name in MODEL_FILES]
        if all(path is not None for path in found):
            return ModelFiles(*(path for path in found if path is not None))
    # Report against the directory that has the most of the files, or the first one searched.
    best = max(directories, key=lambda directory: sum(_locate(directory, name) is not None for name in MODEL_FILES))
    missing = [str((best / name).absolute()) for name in MODEL_FILES if _locate(best, name) is None]
    searched = ", ".join(str(directory) for directory in directories)
    raise ModelUnavailable(
        f"the upload-rules model file {missing[0]} is missing (searched: {searched}); "
        "mount the SigLIP2 ONNX export there (docs/upload-rules.md)"
    )


def check_model_available(settings: RuleInferenceSettings) -> ModelFiles:
    """What `serve` checks before starting workers: the packages import and the files exist."""
    try:
        import_rules_packages()
    except ModuleNotFoundError as error:
        raise ModelUnavailable(str(error)) from None
    return find_model_files(settings)


class SiglipModel:
    """The two towers and the tokenizer of one model directory."""

    def __init__(self, files: ModelFiles, threads: int) -> None:
        packages = import_rules_packages()
        onnxruntime = packages["onnxruntime"]
        tokenizers = packages["tokenizers"]
        self._np = packages["numpy"]
        self.files = files
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self._vision = onnxruntime.InferenceSession(
                str(files.vision), sess_options=options, providers=["CPUExecutionProvider"]
            )
            self._text = onnxruntime.InferenceSession(
                str(files.text), sess_options=options, providers=["CPUExecutionProvider"]
            )
            self._tokenizer = tokenizers.Tokenizer.from_file(str(files.tokenizer))
        except Exception as error:  # onnxruntime and tokenizers raise their own, unrelated types
            raise ModelUnavailable(f"cannot load the upload-rules model ({files.vision.parent}): {error}") from None
        self._check_inputs()
        pad_id = self._tokenizer.token_to_id(PAD_TOKEN)
        self._tokenizer.enable_padding(
            length=SEQUENCE_LENGTH, pad_id=0 if pad_id is None else pad_id, pad_token=PAD_TOKEN
        )
        self._tokenizer.enable_truncation(max_length=SEQUENCE_LENGTH)
        text_inputs = {entry.name for entry in self._text.get_inputs()}
        self._feeds_mask = MASK_INPUT in text_inputs
        self._text_output = _output_name(self._text, TEXT_OUTPUT, files.text)
        self._image_output = _output_name(self._vision, IMAGE_OUTPUT, files.vision)
        self.identity = _identity(files)

    def _check_inputs(self) -> None:
        vision_inputs = {entry.name for entry in self._vision.get_inputs()}
        if PIXEL_INPUT not in vision_inputs:
            raise ModelUnavailable(f"{self.files.vision} has no input '{PIXEL_INPUT}'")
        text_inputs = {entry.name for entry in self._text.get_inputs()}
        if IDS_INPUT not in text_inputs:
            raise ModelUnavailable(f"{self.files.text} has no input '{IDS_INPUT}'")

    def tokenize(self, prompts: Sequence[str]) -> tuple[Any, Any]:
        """``input_ids`` and ``attention_mask`` (int64, [n, 64]) for normalised prompts."""
        np = self._np
        encodings = self._tokenizer.encode_batch([model_text(prompt) for prompt in prompts], add_special_tokens=True)
        ids = np.array([encoding.ids for encoding in encodings], dtype=np.int64)
        mask = np.array([encoding.attention_mask for encoding in encodings], dtype=np.int64)
        return ids, mask

    def embed_prompts(self, prompts: Sequence[str]) -> Embeddings:
        """L2-normalised text embeddings, one row per prompt, in order."""
        ids, mask = self.tokenize(prompts)
        feeds = {IDS_INPUT: ids, MASK_INPUT: mask} if self._feeds_mask else {IDS_INPUT: ids}
        (output,) = self._text.run([self._text_output], feeds)
        return self._normalised(output)

    def pixel_tensor(self, pixels: bytes) -> Any:
        """The model's input from ``imaging.model_pixels.model_pixels``: [1, 3, 224, 224] float32, v / 127.5 - 1."""
        np = self._np
        if len(pixels) != PIXEL_BYTES:
            raise ValueError(f"expected {PIXEL_BYTES} bytes of pixels, got {len(pixels)}")
        samples = np.frombuffer(pixels, dtype=np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE, CHANNELS)
        planes = samples.transpose(2, 0, 1).astype(np.float32) / np.float32(127.5) - np.float32(1.0)
        return np.ascontiguousarray(planes[np.newaxis])

    def embed_image(self, pixels: bytes) -> Embeddings:
        """The L2-normalised image embedding, one row."""
        (output,) = self._vision.run([self._image_output], {PIXEL_INPUT: self.pixel_tensor(pixels)})
        return self._normalised(output)

    def _normalised(self, output: Any) -> Embeddings:
        np = self._np
        rows = np.asarray(output, dtype=np.float32).reshape(len(output), -1)
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        normalised: Embeddings = rows / np.maximum(norms, np.float32(1e-12))
        return normalised

    def similarities(self, image: Embeddings, prompts: Sequence[Embeddings]) -> list[float]:
        """Cosine similarity (both sides normalised) of the image with each prompt, as float64."""
        np = self._np
        values = np.stack(prompts).astype(np.float64) @ image.reshape(-1).astype(np.float64)
        return [float(value) for value in values]

    def embedding_from_bytes(self, data: bytes) -> Embeddings:
        np = self._np
        embedding: Embeddings = np.frombuffer(data, dtype="<f4").copy()
        return embedding

    @staticmethod
    def embedding_bytes(embedding: Embeddings) -> bytes:
        return bytes(embedding.astype("<f4").tobytes())


def _output_name(session: Any, preferred: str, path: Path) -> str:
    names = [entry.name for entry in session.get_outputs()]
    for name in (preferred, POOLED_OUTPUT):
        if name in names:
            return name
    raise ModelUnavailable(f"{path} has neither '{preferred}' nor '{POOLED_OUTPUT}' among its outputs {names}")


def _identity(files: ModelFiles) -> str:
    """What cached prompt embeddings are keyed by: the text tower and tokenizer, by content."""
    digest = hashlib.sha256()
    for path in (files.text, files.tokenizer):
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as file:
            while chunk := file.read(1 << 20):
                digest.update(chunk)
    return "siglip2:" + digest.hexdigest()
