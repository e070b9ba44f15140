"""One place that imports pyvips and sets it up for untrusted input."""

from __future__ import annotations

import pyvips

# Loaders libvips marks untrusted (ImageMagick, PDF, SVG, ...) never see client bytes.
pyvips.block_untrusted_set(True)
# libvips 8.14 marks its JPEG XL codec untrusted as well, but JPEG XL in and out is part
# of the contract. Only these two classes are let through: the loader sees client bytes
# only after the signature sniff and the header limits, and the saver only our pixels.
pyvips.operation_block_set("VipsForeignLoadJxl", False)
pyvips.operation_block_set("VipsForeignSaveJxl", False)
# Decoded pixels are never reused across requests, so libvips' operation cache only costs memory.
pyvips.cache_set_max(0)

# What a libvips failure on client bytes can raise. pyvips decodes libvips' error text as UTF-8,
# and that text can quote the damaged input: the decode then fails instead of pyvips.Error.
VIPS_ERRORS: tuple[type[Exception], ...] = (pyvips.Error, UnicodeDecodeError)

__all__ = ["VIPS_ERRORS", "pyvips"]
