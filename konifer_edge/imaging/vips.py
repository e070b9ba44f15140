"""One place that imports pyvips and sets it up for untrusted input."""

from __future__ import annotations

import pyvips

# Loaders libvips marks untrusted (ImageMagick, PDF, SVG, ...) never see client bytes.
pyvips.block_untrusted_set(True)
# Decoded pixels are never reused across requests, so libvips' operation cache only costs memory.
pyvips.cache_set_max(0)

__all__ = ["pyvips"]
