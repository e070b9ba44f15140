"""A tiny stand-in for the SigLIP2 ONNX export: same file names, inputs and outputs, readable weights.

The real export is hundreds of megabytes and cannot be fetched here; the service's loading,
tokenisation, preprocessing, inference and scoring code runs unchanged on this one.

- Vision tower: ``pixel_values`` [1,3,224,224] -> ``image_embeds`` [1,4] = (mean R, mean G, mean B, 0)
  of the [-1, 1] samples. A pure red image embeds as (1,-1,-1,0), pure blue as (-1,-1,1,0), white as
  (1,1,1,0).
- Text tower: ``input_ids`` (and ``attention_mask``) [n,64] -> ``text_embeds`` [n,4], the masked sum of
  one 4-d vector per token. The caption prefix's words, padding and end-of-text embed as zero, so a
  prompt's embedding is the sum of its own words' vectors (``WORD_VECTORS``).
- ``tokenizer.json``: a WordLevel vocabulary, lower-casing, whitespace split, ``</s>`` appended.

With SigLIP2-base's scale and bias a prompt scores about 1 at cosine 1, about 0.5 near cosine 0.149
and about 0 at cosine 0 or below; ``crimson`` is built to sit at cosine 0.16 with red (score ~0.78).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

DIMENSIONS = 4
_RED = np.array([1.0, -1.0, -1.0, 0.0]) / math.sqrt(3)
_ORTHOGONAL = np.array([0.0, 0.0, 0.0, 1.0])
CRIMSON_COSINE = 0.16

# Word -> vector. Prefix words ("this is a photo of"), <pad>, </s> and <unk> embed as zero.
WORD_VECTORS: dict[str, np.ndarray] = {
    "red": np.array([1.0, -1.0, -1.0, 0.0]),
    "blue": np.array([-1.0, -1.0, 1.0, 0.0]),
    "white": np.array([1.0, 1.0, 1.0, 0.0]),
    "green": np.array([-1.0, 1.0, -1.0, 0.0]),
    "crimson": CRIMSON_COSINE * _RED + math.sqrt(1 - CRIMSON_COSINE**2) * _ORTHOGONAL,
    "nothing": _ORTHOGONAL,
}
SPECIAL = ("<pad>", "</s>", "<unk>")
PREFIX_WORDS = ("this", "is", "a", "photo", "of")
VOCABULARY = [*SPECIAL, *PREFIX_WORDS, *WORD_VECTORS]
# Filler words, so that truncation at 64 tokens can be seen.
VOCABULARY += [f"w{number}" for number in range(80)]


def _vision_graph(slow_matmuls: int) -> onnx.ModelProto:
    pixels = helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, [1, 3, 224, 224])
    output = helper.make_tensor_value_info("image_embeds", TensorProto.FLOAT, [1, DIMENSIONS])
    weights = np.zeros((3, DIMENSIONS), dtype=np.float32)
    weights[0, 0] = weights[1, 1] = weights[2, 2] = 1.0
    initializers = [
        numpy_helper.from_array(weights, "channel_to_embedding"),
        numpy_helper.from_array(np.array([1, 3], dtype=np.int64), "flat_shape"),
    ]
    nodes = [
        helper.make_node("ReduceMean", ["pixel_values"], ["channel_means"], axes=[2, 3], keepdims=0),
        helper.make_node("Reshape", ["channel_means", "flat_shape"], ["means"]),
        helper.make_node("MatMul", ["means", "channel_to_embedding"], ["plain_embeds"]),
    ]
    last = "plain_embeds"
    if slow_matmuls:
        # Work that changes nothing (multiplied by zero) but takes a while: fills the inference pool.
        rng = np.random.default_rng(7)
        initializers += [
            numpy_helper.from_array(rng.standard_normal((672, 672)).astype(np.float32) * 0.01, "busy_weights"),
            numpy_helper.from_array(np.array([224, 672], dtype=np.int64), "busy_shape"),
            numpy_helper.from_array(np.zeros((1,), dtype=np.float32), "zero"),
        ]
        nodes.append(helper.make_node("Reshape", ["pixel_values", "busy_shape"], ["busy_0"]))
        for index in range(slow_matmuls):
            nodes.append(helper.make_node("MatMul", [f"busy_{index}", "busy_weights"], [f"busy_{index + 1}"]))
        nodes += [
            helper.make_node("ReduceSum", [f"busy_{slow_matmuls}"], ["busy_sum"], keepdims=0),
            helper.make_node("Mul", ["busy_sum", "zero"], ["busy_zero"]),
            helper.make_node("Add", [last, "busy_zero"], ["slow_embeds"]),
        ]
        last = "slow_embeds"
    nodes.append(helper.make_node("Identity", [last], ["image_embeds"]))
    graph = helper.make_graph(nodes, "tiny_vision", [pixels], [output], initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def _text_graph(with_mask: bool) -> onnx.ModelProto:
    table = np.zeros((len(VOCABULARY), DIMENSIONS), dtype=np.float32)
    for word, vector in WORD_VECTORS.items():
        table[VOCABULARY.index(word)] = vector
    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", 64])
    output = helper.make_tensor_value_info("text_embeds", TensorProto.FLOAT, ["batch", DIMENSIONS])
    initializers = [
        numpy_helper.from_array(table, "token_vectors"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "sequence_axis"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "last_axis"),
    ]
    nodes = [helper.make_node("Gather", ["token_vectors", "input_ids"], ["vectors"], axis=0)]
    inputs = [ids]
    summed = "vectors"
    if with_mask:
        inputs.append(helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", 64]))
        nodes += [
            helper.make_node("Cast", ["attention_mask"], ["mask_float"], to=TensorProto.FLOAT),
            helper.make_node("Unsqueeze", ["mask_float", "last_axis"], ["mask_column"]),
            helper.make_node("Mul", ["vectors", "mask_column"], ["masked"]),
        ]
        summed = "masked"
    nodes.append(helper.make_node("ReduceSum", [summed, "sequence_axis"], ["text_embeds"], keepdims=0))
    graph = helper.make_graph(nodes, "tiny_text", inputs, [output], initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def _tokenizer() -> Tokenizer:
    vocabulary = {word: index for index, word in enumerate(VOCABULARY)}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocabulary, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", vocabulary["</s>"])]
    )
    return tokenizer


def build_tiny_model(
    directory: Path, *, with_mask: bool = True, slow_matmuls: int = 0, onnx_subdirectory: bool = False
) -> Path:
    """Write ``vision_model.onnx``, ``text_model.onnx`` and ``tokenizer.json`` into ``directory``.

    Side by side as Konifer's download script leaves them, or with the two ONNX files in ``onnx/``
    as the export's repository holds them.
    """
    onnx_directory = directory / "onnx" if onnx_subdirectory else directory
    onnx_directory.mkdir(parents=True, exist_ok=True)
    onnx.save(_vision_graph(slow_matmuls), str(onnx_directory / "vision_model.onnx"))
    onnx.save(_text_graph(with_mask), str(onnx_directory / "text_model.onnx"))
    _tokenizer().save(str(directory / "tokenizer.json"))
    return directory


# -- independent expectations ----------------------------------------------------------------------

LOGIT_SCALE = 4.724453449249268
LOGIT_BIAS = -16.771724700927734


def expected_text_embedding(prompt: str) -> np.ndarray:
    """The prompt's embedding by the rules above, without the service's code."""
    words = prompt.strip().lower().split()
    return np.sum([WORD_VECTORS.get(word, np.zeros(DIMENSIONS)) for word in words], axis=0)


def expected_score(image_embedding: np.ndarray, prompt: str) -> float:
    text = expected_text_embedding(prompt)
    text_norm = np.linalg.norm(text)
    if text_norm == 0:
        cosine = 0.0
    else:
        cosine = float(np.dot(text / text_norm, image_embedding / np.linalg.norm(image_embedding)))
    return float(1.0 / (1.0 + np.exp(-(cosine * np.exp(LOGIT_SCALE) + LOGIT_BIAS))))


def embedding_of_colour(rgb: tuple[int, int, int]) -> np.ndarray:
    """What the tiny vision tower makes of a uniform image of this colour."""
    return np.array([value / 127.5 - 1.0 for value in rgb] + [0.0])
