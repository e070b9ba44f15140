"""`konifer-edge check-config` on the configuration spec 06 describes (Konifer v0.10 and after).

Upload rules and the rule-evaluation API (spec 06 sections 1 to 3) are checked where they are built.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import assert_refused, check_config

# Konifer v0.10's HOCON, in its current map layout: every section 8 and 9 setting at once.
KONIFER_V010_CONF = """
data-store {
  provider = postgresql
  postgresql {
    host = db.internal
    port = 5432
    database = konifer
    ssl-mode = verify-full
  }
}
object-store {
  provider = s3
  s3 {
    endpoint-url = "https://0123456789abcdef.r2.cloudflarestorage.com"
    region = auto
    access-key = r2-access
    secret-key = r2-secret
  }
}
source {
  url { allowed-domains = [ "images.example.com" ], max-bytes = 10485760 }
  multipart { max-bytes = 10485760 }
}
variant-generation {
  workers = 2
  queue-size = 100
  synchronous-priority = 80
}
variant-profiles {
  small { w = 200, format = "image/webp" }
  hero { w = 1200, h = 600, fit = crop }
}
paths {
  "/**" {
    object-store { bucket = assets }
    delivery { strategy = service }
  }
  "/private/**" {
    delivery { strategy = presigned, presigned { ttl = 10m } }
  }
  "/cdn/**" {
    delivery { strategy = template, template { string = "https://{bucket}.cdn.example.com/{key}" } }
  }
  "/uploads/**" {
    preprocessing {
      enabled = true
      image { format = "image/avif", max-width = 2000 }
    }
  }
}
"""

# The documentation's preprocessing example, with max-height outside `image`.
MISPLACED_MAX_HEIGHT_CONF = """
paths {
  "/**" {
    preprocessing {
      enabled = true
      max-height = 300
      image { format = "image/avif" }
    }
  }
}
"""

# The older list layout, with the redirect block Konifer documented before `delivery`.
LIST_LAYOUT_CONF = """
paths = [
  {
    path = "/**"
    object-store {
      redirect {
        strategy = presigned
        presigned { ttl = 30m }
      }
    }
  }
]
"""

ssl_modes = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]


def test_a_konifer_v0_10_configuration_loads(tmp_path: Path) -> None:
    result = check_config(tmp_path, "konifer.conf", KONIFER_V010_CONF)
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout
    assert "Traceback" not in result.stderr


def test_a_misplaced_max_height_loads_with_a_warning(tmp_path: Path) -> None:
    result = check_config(tmp_path, "konifer.conf", MISPLACED_MAX_HEIGHT_CONF)
    assert result.returncode == 0, result.stderr
    assert "transform.preprocessing.max-height" in result.stderr
    assert "ignored" in result.stderr


def test_the_list_layout_with_a_redirect_block_loads(tmp_path: Path) -> None:
    result = check_config(tmp_path, "konifer.conf", LIST_LAYOUT_CONF)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("mode", ssl_modes)
def test_every_ssl_mode_loads(tmp_path: Path, mode: str) -> None:
    result = check_config(tmp_path, "konifer.conf", f"data-store.postgresql {{ host = db, ssl-mode = {mode} }}")
    assert result.returncode == 0, result.stderr


def test_in_memory_loads_and_warns(tmp_path: Path) -> None:
    result = check_config(tmp_path, "konifer.conf", KONIFER_V010_CONF, env={"IN_MEMORY": "true"})
    assert result.returncode == 0, result.stderr
    assert "IN_MEMORY" in result.stderr


def test_fit_cover_is_refused_naming_cover(tmp_path: Path) -> None:
    result = check_config(tmp_path, "konifer.conf", "variant-profiles { hero { w = 10, h = 10, fit = cover } }")
    assert_refused(result, "variant-profiles.hero.fit")
    assert "cover" in result.stderr


def test_delivery_and_redirect_strategies_that_disagree_are_refused(tmp_path: Path) -> None:
    conf = """
    paths { "/**" {
      delivery { strategy = presigned }
      return-format { redirect { strategy = none } }
    } }
    """
    result = check_config(tmp_path, "konifer.conf", conf)
    assert_refused(result, "paths./**.delivery")
    assert "return-format.redirect" in result.stderr


def test_the_toml_spelling_loads_too(tmp_path: Path) -> None:
    toml = """
[data-store.postgresql]
host = "db"
ssl-mode = "require"

[variant-generation]
synchronous-priority = 50

[variant-profiles.small]
w = 100
format = "image/png"

[paths."/**".delivery]
strategy = "presigned"
presigned.ttl = "5m"
"""
    result = check_config(tmp_path, "konifer.toml", toml)
    assert result.returncode == 0, result.stderr
