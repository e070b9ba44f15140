"""One place that imports pyvips and sets it up for untrusted input."""

from __future__ import annotations

import pyvips

# Loaders libvips marks untrusted (ImageMagick, PDF, SVG, ...) never see client bytes.
pyvips.block_untrusted_set(True)
# The bundled libvips has no JPEG XL and cannot decode HEIC: imaging/codecs.py does both.
# Its HEIF loader still parses HEIC headers, so it is kept away from HEIC bytes by callers
# (they dispatch on the signature) rather than blocked, which would also block AVIF.
# Decoded pixels are never reused across requests, so libvips' operation cache only costs memory.
pyvips.cache_set_max(0)

# What a libvips failure on client bytes can raise. pyvips decodes libvips' error text as UTF-8,
# and that text can quote the damaged input: the decode then fails instead of pyvips.Error.
VIPS_ERRORS: tuple[type[Exception], ...] = (pyvips.Error, UnicodeDecodeError)

__all__ = ["VIPS_ERRORS", "pyvips"]
