"""Upload rules: zero-shot scoring of an image against text prompts, and the decisions built on it.

Pure parts (prompt text, scores, the decision table) import nothing of the ``rules`` extra; the image's
pixels are made with libvips by ``imaging.model_pixels``, in the decode process. The model (ONNX
Runtime, tokenizers, numpy) is imported only when rules are configured, from ``rules.model``, so
the base install runs without the ``rules`` extra.
"""
