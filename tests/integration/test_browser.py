"""End to end in a real browser: Debian's headless Chromium, driven by Playwright, loads images
straight from a running konifer-edge server (spec 05 §2-3).

One page, built the way a site would build it from `link` answers:

- a plain `<img src=".../-/content?w=200">` of a JPEG: no `format`, so Chromium's own `Accept` picks
  the format, by spec 05 §3 the first it lists among ours (AVIF in older Chromium, JPEG XL in Debian's
  Chromium 156, whose image Accept starts `image/jxl,image/avif,image/webp`), answered with
  `Vary: Accept`; next to it the same image with `format=avif`;
- a `<picture>` whose `<source type="image/webp">` is the `url` of a `link?format=webp&w=300` answer
  for a PNG with alpha, with a PNG `<img>` fallback;
- an `<img srcset="...?w=100 1x, ...?w=200 2x">` of an animated GIF, on a 2x screen;
- the LQIPs of all three from their `link` answers, as placeholders: each ThumbHash decoded in the
  page by a port of the reference `thumbHashToRGBA` and drawn through a canvas, each BlurHash
  decoded in Python to a PNG data URL sized from the metadata `attributes`.

The browser must decode every image at its expected size, and each placeholder's aspect ratio must
be within 15% of the real image's.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import blurhash
import pytest
import thumbhash
from PIL import Image as PillowImage

from tests.support.deployment import Deployment
from tests.support.images import make_image

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Response

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # A fresh --user-data-dir comes from Playwright itself: launch() always starts on a new empty
    # temporary profile, and refuses the flag in `args`.
]
ASPECT_TOLERANCE = 0.15
SERVED_TYPES = frozenset(
    {"image/jpeg", "image/png", "image/webp", "image/avif", "image/jxl", "image/heic", "image/gif"}
)

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is absent (Debian package chromium)"),
    pytest.mark.skipif(
        importlib.util.find_spec("playwright") is None, reason="playwright (Python package) is not importable"
    ),
]


class Stored:
    """One asset as the page sees it: where it lives, its size, its `link` answer."""

    def __init__(self, deployment: Deployment, name: str, path: str, content: bytes, mime: str) -> None:
        self.name = name
        self.path = path
        response = deployment.client.post(
            f"/assets{path}",
            files={"metadata": (None, json.dumps({"alt": name}), "application/json"), "file": (name, content, mime)},
        )
        assert response.status_code == 201, response.text
        metadata = deployment.client.get(f"/assets{path}/-/metadata")
        assert metadata.status_code == 200, metadata.text
        attributes = metadata.json()["variants"][0]["attributes"]
        self.width: int = attributes["width"]
        self.height: int = attributes["height"]
        link = deployment.client.get(f"/assets{path}/-/link")
        assert link.status_code == 200, link.text
        self.link: dict[str, Any] = link.json()
        lqip = self.link["lqip"]
        assert set(lqip) == {"blurhash", "thumbhash"}, f"{name}: link answer without both LQIPs: {self.link}"
        self.blurhash: str = lqip["blurhash"]
        self.thumbhash: str = lqip["thumbhash"]

    def content_url(self, base_url: str, query: str) -> str:
        return f"{base_url}/assets{self.path}/-/content?{query}"


def blurhash_data_url(hash_: str, width: int, height: int) -> tuple[str, tuple[int, int]]:
    """The BlurHash as a PNG data URL, 32 px on its long side, in the image's own proportions."""
    long_side = max(width, height)
    size = (max(1, round(32 * width / long_side)), max(1, round(32 * height / long_side)))
    pixels: PillowImage.Image = blurhash.decode(hash_, *size)
    buffer = io.BytesIO()
    pixels.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode(), size


# thumbHashToRGBA and thumbHashToApproximateAspectRatio from the reference implementation
# (https://github.com/evanw/thumbhash, MIT licence, by Evan Wallace), ported line for line; the
# Python `thumbhash` package's decoder reuses stale cosine tables, so the page decodes on its own.
THUMBHASH_JS = """
function thumbHashToApproximateAspectRatio(hash) {
  const header = hash[3];
  const hasAlpha = hash[2] & 0x80;
  const isLandscape = hash[4] & 0x80;
  const lx = isLandscape ? (hasAlpha ? 5 : 7) : header & 7;
  const ly = isLandscape ? header & 7 : (hasAlpha ? 5 : 7);
  return lx / ly;
}

function thumbHashToRGBA(hash) {
  const { PI, min, max, cos, round } = Math;
  const header24 = hash[0] | (hash[1] << 8) | (hash[2] << 16);
  const header16 = hash[3] | (hash[4] << 8);
  const l_dc = (header24 & 63) / 63;
  const p_dc = ((header24 >> 6) & 63) / 31.5 - 1;
  const q_dc = ((header24 >> 12) & 63) / 31.5 - 1;
  const l_scale = ((header24 >> 18) & 31) / 31;
  const hasAlpha = header24 >> 23;
  const p_scale = ((header16 >> 3) & 63) / 63;
  const q_scale = ((header16 >> 9) & 63) / 63;
  const isLandscape = header16 >> 15;
  const lx = max(3, isLandscape ? (hasAlpha ? 5 : 7) : header16 & 7);
  const ly = max(3, isLandscape ? header16 & 7 : (hasAlpha ? 5 : 7));
  const a_dc = hasAlpha ? (hash[5] & 15) / 15 : 1;
  const a_scale = (hash[5] >> 4) / 15;
  const ac_start = hasAlpha ? 6 : 5;
  let ac_index = 0;
  const decodeChannel = (nx, ny, scale) => {
    const ac = [];
    for (let cy = 0; cy < ny; cy++)
      for (let cx = cy ? 0 : 1; cx * ny < nx * (ny - cy); cx++)
        ac.push((((hash[ac_start + (ac_index >> 1)] >> ((ac_index++ & 1) << 2)) & 15) / 7.5 - 1) * scale);
    return ac;
  };
  const l_ac = decodeChannel(lx, ly, l_scale);
  const p_ac = decodeChannel(3, 3, p_scale * 1.25);
  const q_ac = decodeChannel(3, 3, q_scale * 1.25);
  const a_ac = hasAlpha && decodeChannel(5, 5, a_scale);
  const ratio = thumbHashToApproximateAspectRatio(hash);
  const w = round(ratio > 1 ? 32 : 32 * ratio);
  const h = round(ratio > 1 ? 32 / ratio : 32);
  const rgba = new Uint8ClampedArray(w * h * 4), fx = [], fy = [];
  for (let y = 0, i = 0; y < h; y++) {
    for (let x = 0; x < w; x++, i += 4) {
      let l = l_dc, p = p_dc, q = q_dc, a = a_dc;
      for (let cx = 0, n = max(lx, hasAlpha ? 5 : 3); cx < n; cx++) fx[cx] = cos(PI / w * (x + 0.5) * cx);
      for (let cy = 0, n = max(ly, hasAlpha ? 5 : 3); cy < n; cy++) fy[cy] = cos(PI / h * (y + 0.5) * cy);
      for (let cy = 0, j = 0; cy < ly; cy++)
        for (let cx = cy ? 0 : 1, fy2 = fy[cy] * 2; cx * ly < lx * (ly - cy); cx++, j++)
          l += l_ac[j] * fx[cx] * fy2;
      for (let cy = 0, j = 0; cy < 3; cy++) {
        for (let cx = cy ? 0 : 1, fy2 = fy[cy] * 2; cx < 3 - cy; cx++, j++) {
          const f = fx[cx] * fy2;
          p += p_ac[j] * f;
          q += q_ac[j] * f;
        }
      }
      if (hasAlpha)
        for (let cy = 0, j = 0; cy < 5; cy++)
          for (let cx = cy ? 0 : 1, fy2 = fy[cy] * 2; cx < 5 - cy; cx++, j++)
            a += a_ac[j] * fx[cx] * fy2;
      const b = l - 2 / 3 * p;
      const r = (3 * l - b + q) / 2;
      const g = r - q;
      rgba[i] = max(0, 255 * min(1, r));
      rgba[i + 1] = max(0, 255 * min(1, g));
      rgba[i + 2] = max(0, 255 * min(1, b));
      rgba[i + 3] = max(0, 255 * min(1, a));
    }
  }
  return { w, h, rgba };
}

// Every <img data-thumbhash="..."> gets its placeholder: decode, paint a canvas, use its PNG.
window.thumbhashAverages = {};
for (const img of document.querySelectorAll("img[data-thumbhash]")) {
  const hash = Uint8Array.from(atob(img.dataset.thumbhash), (c) => c.charCodeAt(0));
  const { w, h, rgba } = thumbHashToRGBA(hash);
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  canvas.getContext("2d").putImageData(new ImageData(rgba, w, h), 0, 0);
  const sums = [0, 0, 0, 0];
  for (let i = 0; i < rgba.length; i++) sums[i % 4] += rgba[i];
  window.thumbhashAverages[img.id] = sums.map((sum) => sum / (w * h) / 255);
  img.src = canvas.toDataURL("image/png");
}
"""

# Waits for every image in the page, then reports what the browser made of each.
INSPECT_JS = """
async () => {
  const images = [...document.querySelectorAll("img")];
  await Promise.all(images.map((img) => img.complete ? null : new Promise((done) => {
    img.addEventListener("load", done, { once: true });
    img.addEventListener("error", done, { once: true });
  })));
  return Object.fromEntries(images.map((img) => [img.id, {
    complete: img.complete,
    naturalWidth: img.naturalWidth,
    naturalHeight: img.naturalHeight,
    currentSrc: img.currentSrc.startsWith("data:") ? "data:" : img.currentSrc,
  }]));
}
"""


def build_page(
    base_url: str, jpeg: Stored, png: Stored, gif: Stored, webp_link: str
) -> tuple[str, dict[str, tuple[int, int]]]:
    """The HTML, and the size each BlurHash placeholder was decoded at."""
    placeholders: list[str] = []
    blurhash_sizes: dict[str, tuple[int, int]] = {}
    for stored in (jpeg, png, gif):
        data_url, size = blurhash_data_url(stored.blurhash, stored.width, stored.height)
        blurhash_sizes[stored.name] = size
        placeholders.append(
            f'<figure><img id="blurhash-{stored.name}" alt="" src="{data_url}">'
            f'<img id="thumbhash-{stored.name}" alt="" data-thumbhash="{stored.thumbhash}">'
            f"<figcaption>{stored.name} placeholders</figcaption></figure>"
        )
    html = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>konifer-edge in Chromium</title>
<style>figure img {{ width: 96px; margin-right: 4px; }}</style></head>
<body>
  <img id="plain" alt="{jpeg.name}" src="{jpeg.content_url(base_url, "w=200")}">
  <img id="avif" alt="{jpeg.name} as AVIF" src="{jpeg.content_url(base_url, "format=avif&w=200")}">
  <picture>
    <source type="image/webp" srcset="{webp_link}">
    <img id="picture" alt="{png.name}" src="{png.content_url(base_url, "format=png&w=300")}">
  </picture>
  <img id="srcset" alt="{gif.name}"
       src="{gif.content_url(base_url, "w=100")}"
       srcset="{gif.content_url(base_url, "w=100")} 1x, {gif.content_url(base_url, "w=200")} 2x">
  {"".join(placeholders)}
  <script>{THUMBHASH_JS}</script>
</body></html>"""
    return html, blurhash_sizes


def negotiated_type(accept: str) -> str:
    """Spec 05 §3: among the formats the service makes, the highest q-value, ties to the first listed."""
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(accept.split(",")):
        media_range, *parameters = (part.strip() for part in item.split(";"))
        q = 1.0
        for parameter in parameters:
            key, _, value = parameter.partition("=")
            if key.strip().lower() == "q":
                q = float(value)
        if q > 0 and media_range.lower() in SERVED_TYPES:
            ranked.append((-q, position, media_range.lower()))
    assert ranked, f"Chromium's Accept {accept!r} names none of the formats the service makes"
    return min(ranked)[2]


def aspect(width: float, height: float) -> float:
    return width / height


def assert_aspect_close(what: str, placeholder: float, real: float) -> None:
    assert abs(placeholder - real) / real <= ASPECT_TOLERANCE, (
        f"{what}: placeholder aspect {placeholder:.3f} vs real image {real:.3f} (more than 15% apart)"
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            launched.close()


def test_images_and_placeholders_in_chromium(fs_api: Deployment, browser: Browser, tmp_path: Path) -> None:
    base_url = fs_api.base_url
    root = f"/lqip/browser/{uuid.uuid4().hex[:12]}"
    jpeg = Stored(fs_api, "jpeg", f"{root}/photo", make_image("jpg", 640, 480), "image/jpeg")
    png = Stored(fs_api, "png", f"{root}/logo", make_image("png", 300, 400, alpha=True), "image/png")
    gif = Stored(fs_api, "gif", f"{root}/anim", make_image("gif", 360, 240, frames=4), "image/gif")
    assert (jpeg.width, jpeg.height, png.width, png.height, gif.width, gif.height) == (640, 480, 300, 400, 360, 240)

    webp = fs_api.client.get(f"/assets{png.path}/-/link?format=webp&w=300")
    assert webp.status_code == 200, webp.text
    webp_link: str = webp.json()["url"]
    assert webp_link.startswith(f"{base_url}/assets{png.path}/-/"), webp_link
    assert "format=webp" in webp_link and "w=300" in webp_link, webp_link

    html, blurhash_sizes = build_page(base_url, jpeg, png, gif, webp_link)

    context = browser.new_context(device_scale_factor=2, viewport={"width": 800, "height": 600})
    try:
        page = context.new_page()
        responses: list[Response] = []
        failures: list[str] = []
        errors: list[str] = []
        page.on("response", lambda response: responses.append(response))
        page.on("requestfailed", lambda request: failures.append(f"{request.url}: {request.failure}"))
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.set_content(html, wait_until="load", timeout=20_000)
        seen: dict[str, dict[str, Any]] = page.evaluate(INSPECT_JS)
        averages: dict[str, list[float]] = page.evaluate("window.thumbhashAverages")
        page.screenshot(path=str(tmp_path / "page.png"), full_page=True)  # kept for a failure's post-mortem
        by_url = {response.url: response for response in responses}
        headers = {url: response.all_headers() for url, response in by_url.items()}
        accept = {url: response.request.all_headers().get("accept", "") for url, response in by_url.items()}
        statuses = {url: response.status for url, response in by_url.items()}
    finally:
        context.close()

    assert not errors, f"script errors in the page: {errors}"
    assert not failures, f"requests the browser could not complete: {failures}"
    for url, status in statuses.items():
        if url.startswith(base_url):
            assert status == 200, f"{url} answered {status}"

    # Every image, real and placeholder, decoded.
    for image_id, state in seen.items():
        assert state["complete"] and state["naturalWidth"] > 0, f"{image_id} did not decode: {state}"

    # <img src=...?w=200>: no format, so Chromium's own Accept picks it. That header puts a modern
    # format first (AVIF before Chromium 14x, JPEG XL before AVIF in Debian's Chromium 156), and the
    # answer must be that format, with Vary: Accept.
    plain_url = jpeg.content_url(base_url, "w=200")
    assert (seen["plain"]["naturalWidth"], seen["plain"]["naturalHeight"]) == (200, 150), seen["plain"]
    assert plain_url in headers, f"the browser never fetched {plain_url}; it fetched {sorted(headers)}"
    wanted = negotiated_type(accept[plain_url])
    assert wanted in {"image/avif", "image/jxl"}, f"Chromium's Accept changed: {accept[plain_url]!r}"
    plain = headers[plain_url]
    assert plain["content-type"] == wanted, f"Accept {accept[plain_url]!r} was answered with {plain}"
    assert "accept" in [token.strip().lower() for token in plain.get("vary", "").split(",")], plain
    # The variant's LQIPs (a pure resize takes the original's, as Konifer does).
    assert blurhash.is_valid_blurhash(plain.get("k-lqip-blurhash", "")) and plain.get("k-lqip-thumbhash"), plain

    # An explicit AVIF decodes in Chromium too.
    avif_url = jpeg.content_url(base_url, "format=avif&w=200")
    assert (seen["avif"]["naturalWidth"], seen["avif"]["naturalHeight"]) == (200, 150), seen["avif"]
    assert headers[avif_url]["content-type"] == "image/avif", headers[avif_url]

    # <picture>: the WebP <source>, i.e. the link answer's URL, wins over the PNG fallback.
    assert seen["picture"]["currentSrc"] == webp_link, seen["picture"]
    assert (seen["picture"]["naturalWidth"], seen["picture"]["naturalHeight"]) == (300, 400), seen["picture"]
    assert headers[webp_link]["content-type"] == "image/webp", headers[webp_link]

    # srcset on a 2x screen: the w=200 candidate, whose density-corrected width is 100.
    doubled_url = gif.content_url(base_url, "w=200")
    assert seen["srcset"]["currentSrc"] == doubled_url, seen["srcset"]
    assert seen["srcset"]["naturalWidth"] == 100, seen["srcset"]
    assert abs(seen["srcset"]["naturalHeight"] - 200 * gif.height / gif.width / 2) <= 1, seen["srcset"]
    assert headers[doubled_url]["content-type"].startswith("image/"), headers[doubled_url]

    # The placeholders: the shape of the real image the browser showed, within 15%.
    real = {
        "jpeg": aspect(seen["plain"]["naturalWidth"], seen["plain"]["naturalHeight"]),
        "png": aspect(seen["picture"]["naturalWidth"], seen["picture"]["naturalHeight"]),
        "gif": aspect(seen["srcset"]["naturalWidth"], seen["srcset"]["naturalHeight"]),
    }
    for stored in (jpeg, png, gif):
        name = stored.name
        thumb = seen[f"thumbhash-{name}"]
        thumb_aspect = aspect(thumb["naturalWidth"], thumb["naturalHeight"])
        assert_aspect_close(f"{name} thumbhash", thumb_aspect, real[name])
        hash_bytes = list(base64.b64decode(stored.thumbhash))
        # The page's decoder agrees with the Python package on the header: same shape, same mean colour.
        expected_ratio = thumbhash.thumb_hash_to_approximate_aspect_ratio(hash_bytes)
        assert abs(thumb_aspect - expected_ratio) / expected_ratio < 0.05, (name, thumb, expected_ratio)
        expected_average = thumbhash.thumb_hash_to_average_rgba(hash_bytes)
        assert all(abs(a - b) < 0.02 for a, b in zip(averages[f"thumbhash-{name}"], expected_average, strict=True)), (
            name,
            averages[f"thumbhash-{name}"],
            expected_average,
        )

        blur = seen[f"blurhash-{name}"]
        assert (blur["naturalWidth"], blur["naturalHeight"]) == blurhash_sizes[name], blur
        assert_aspect_close(f"{name} blurhash", aspect(blur["naturalWidth"], blur["naturalHeight"]), real[name])
