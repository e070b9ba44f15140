#!/usr/bin/env bash
# The RUN steps of the repository's Dockerfile, for a Debian 12 machine without a container engine.
#
#   deploy/dockerfile_steps.sh packages                  runtime stage: libstdc++6, lists cleaned (root)
#   deploy/dockerfile_steps.sh venv [VENV] [SOURCE]      builder stage: a venv holding the package (pip install .)
#   deploy/dockerfile_steps.sh user [DATA_DIR]           runtime stage: user and group 10001, the data directory (root)
#   deploy/dockerfile_steps.sh verify [PYTHON]           runtime stage: all seven formats encode and decode
#   deploy/dockerfile_steps.sh all [VENV]                every step above, in the Dockerfile's order
#
# Defaults: VENV /opt/venv, SOURCE the repository root, DATA_DIR /data, PYTHON VENV/bin/python.
# The venv is made by $BASE_PYTHON (default python3; the image's is /usr/local/bin/python3, Debian's
# own is /usr/bin/python3): it has to be readable by user 10001, which a pyenv under /root is not.
# The Dockerfile runs `verify` itself as its last RUN (the image does not build when a format is
# missing), so the smoke check here and in the image are the same code. The package list, the user
# and the pip command must stay equal to the Dockerfile's; tests/unit/test_deploy_files.py checks it.
set -euo pipefail

RUNTIME_PACKAGES=(libstdc++6)
APP_UID=10001
APP_USER=konifer
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

step_packages() {
  # Dockerfile, runtime stage. libvips and the HEIC and JPEG XL codecs come as wheels that bundle
  # their libraries (docs/imaging.md); all three link the system's C++ runtime, as manylinux expects.
  as_root apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${RUNTIME_PACKAGES[@]}"
  as_root rm -rf /var/lib/apt/lists/*
}

step_venv() {
  # Dockerfile, builder stage. Every runtime dependency ships a manylinux wheel (libvips itself is
  # pyvips-binary's), so no compiler and no libvips headers are needed.
  local venv="${1:-/opt/venv}" source="${2:-$REPO_ROOT}"
  "${BASE_PYTHON:-python3}" -m venv "$venv"
  "$venv/bin/python" -m pip install --no-cache-dir --upgrade pip
  "$venv/bin/python" -m pip install --no-cache-dir "$source[rules]"
}

step_user() {
  # Dockerfile, runtime stage: the service never runs as root (pgserver refuses root anyway).
  local data_dir="${1:-/data}"
  getent group "$APP_UID" >/dev/null || as_root groupadd --gid "$APP_UID" "$APP_USER"
  getent passwd "$APP_UID" >/dev/null ||
    as_root useradd --uid "$APP_UID" --gid "$APP_UID" --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin "$APP_USER"
  as_root install -d -o "$APP_UID" -g "$APP_UID" -m 0750 "$data_dir"
  as_root install -d -m 0755 /etc/konifer
}

step_verify() {
  local python="${1:-/opt/venv/bin/python}"
  "$python" - <<'PY'
"""Smoke check of the installed codecs: each of the seven formats is written and read back."""

import importlib
import sys

import pyvips

from konifer_edge.domain.formats import ImageFormat
from konifer_edge.imaging import codecs

# The service's own libvips set-up (untrusted loaders blocked, JPEG XL let through), so the check
# sees exactly what a render sees; importing the app also proves every runtime dependency loads.
importlib.import_module("konifer_edge.imaging.vips")
importlib.import_module("konifer_edge.app")
# The `rules` extra: what upload rules import once they are configured.
for package in ("onnxruntime", "tokenizers", "numpy"):
    importlib.import_module(package)

COLOUR = (200, 80, 40)
TOLERANCE = 12.0
# The encoder calls of konifer_edge/imaging/transform.py, the loader that must read the bytes back,
# and the leading bytes of each container or codestream. HEIC and JPEG XL go through
# konifer_edge/imaging/codecs.py (libheif and libjxl), the rest through libvips.
CASES = {
    "jpeg": (lambda i: i.jpegsave_buffer(Q=80, optimize_coding=True), "jpegload", (b"\xff\xd8\xff",)),
    "png": (lambda i: i.pngsave_buffer(compression=6), "pngload", (b"\x89PNG\r\n\x1a\n",)),
    "webp": (lambda i: i.webpsave_buffer(Q=80, effort=4), "webpload", (b"RIFF",)),
    "avif": (lambda i: i.heifsave_buffer(Q=80, compression="av1", effort=4), "heifload", (b"ftypavif",)),
    "heic": (lambda i: codecs.encode(i, ImageFormat.HEIC, 80, keep_exif=True), "heifload", (b"ftypheic",)),
    "jxl": (
        lambda i: codecs.encode(i, ImageFormat.JPEG_XL, 80, keep_exif=True),
        "jxlload",
        (b"\xff\x0a", b"\x00\x00\x00\x0cJXL "),
    ),
    "gif": (lambda i: i.gifsave_buffer(), "gifload", (b"GIF8",)),
}
CODEC_DECODERS = {"heic": ImageFormat.HEIC, "jxl": ImageFormat.JPEG_XL}
HEIF_COMPRESSION = {"avif": "av1"}

image = pyvips.Image.black(96, 64).new_from_image(list(COLOUR)).copy(interpretation="srgb").cast("uchar")
failures = []
for name, (encode, loader, magics) in CASES.items():
    try:
        data = encode(image)
        if not any(data.startswith(magic) or data[4:12] == magic for magic in magics):
            raise ValueError(f"unexpected leading bytes {data[:12]!r}")
        if name in CODEC_DECODERS:
            decoded = codecs.decode(data, CODEC_DECODERS[name])
        else:
            decoded = pyvips.Image.new_from_buffer(data, "")
        if not decoded.get("vips-loader").startswith(loader):
            raise ValueError(f"read back by {decoded.get('vips-loader')}, expected {loader}")
        if (decoded.width, decoded.height) != (image.width, image.height):
            raise ValueError(f"read back as {decoded.width}x{decoded.height}")
        if name in HEIF_COMPRESSION and decoded.get("heif-compression") != HEIF_COMPRESSION[name]:
            raise ValueError(f"heif-compression is {decoded.get('heif-compression')}")
        means = [decoded.extract_band(band).avg() for band in range(3)]
        if any(abs(mean - expected) > TOLERANCE for mean, expected in zip(means, COLOUR, strict=True)):
            raise ValueError(f"colour read back as {[round(m, 1) for m in means]}, expected {COLOUR}")
    except Exception as error:  # every format is reported, not only the first that fails
        failures.append(f"{name}: {type(error).__name__}: {error}")
        continue
    print(f"ok {name}: {len(data)} bytes, {decoded.get('vips-loader')}")

version = ".".join(str(pyvips.version(part)) for part in range(3))
if failures:
    print(f"libvips {version} cannot handle every format:", *failures, sep="\n  ", file=sys.stderr)
    sys.exit(1)
print(f"libvips {version}: all {len(CASES)} formats encode and decode")
PY
}

command="${1:-}"
shift || true
case "$command" in
  packages) step_packages ;;
  venv) step_venv "$@" ;;
  user) step_user "$@" ;;
  verify) step_verify "$@" ;;
  all)
    venv="${1:-/opt/venv}"
    step_venv "$venv" "$REPO_ROOT"
    step_packages
    step_user
    step_verify "$venv/bin/python"
    ;;
  *)
    sed -n '2,9p' "${BASH_SOURCE[0]}" >&2
    exit 64
    ;;
esac
