"""Upload rules: zero-shot scoring of an image against text prompts, and the decisions built on it.

Pure parts (prompt text, scores, the decision table, the image's pixels) import nothing beyond
pyvips; the model (ONNX Runtime, tokenizers, numpy) is imported only when rules are configured,
from ``rules.model``, so the base install runs without the ``rules`` extra.
"""
