"""The peers konifer-edge is measured against: nginx (static file), bare ASGI and RSGI apps on Granian (the
stack's ceilings), thumbor and ipx. A peer that was not installed raises with the installer's log, and is recorded."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from machine import command_output
from processes import Service, start_service, wait_http
from settings import BENCH, CORES, HOST, KONIFER_WORKERS, NODE_DIR, REPO, THUMBOR_VENV, free_port


def start_nginx(tmp: Path, static: Path) -> tuple[Service, int]:
    port = free_port()
    conf_dir = tmp / "nginx"
    conf_dir.mkdir(exist_ok=True)
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = "".join(
        f"  {kind}_temp_path {conf_dir / kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = conf_dir / "nginx.conf"
    conf.write_text(
        f"{user}worker_processes {CORES};\ndaemon off;\npid {conf_dir / 'nginx.pid'};\n"
        f"error_log {conf_dir / 'error.log'} warn;\nevents {{ worker_connections 4096; }}\n"
        "http {\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  keepalive_requests 1000000;\n"
        f"  keepalive_timeout 120s;\n  types {{ image/jpeg jpg; }}\n{temp}"
        f"  server {{\n    listen {HOST}:{port};\n    root {static};\n  }}\n}}\n"
    )
    service = start_service("nginx", ["nginx", "-c", str(conf), "-e", str(conf_dir / "error.log")], tmp / "nginx.log")
    wait_http(port, "/photo-400.jpg", 20, service)
    return service, port


def start_thumbor(tmp: Path, images: Path) -> tuple[Service, int]:
    binary = THUMBOR_VENV / "bin" / "thumbor"
    if not binary.exists():
        raise RuntimeError(_install_error("thumbor") or f"{binary} is missing")
    port = free_port()
    conf = tmp / "thumbor.conf"
    conf.write_text(
        "LOADER = 'thumbor.loaders.file_loader'\n"
        f"FILE_LOADER_ROOT_PATH = '{images}'\n"
        "ALLOW_UNSAFE_URL = True\n"
        "STORAGE = 'thumbor.storages.no_storage'\n"
        # thumbor's own result cache: the hot scenario serves rendered results from it.
        "RESULT_STORAGE = 'thumbor.result_storages.file_storage'\n"
        f"RESULT_STORAGE_FILE_STORAGE_ROOT_PATH = '{tmp / 'thumbor-results'}'\n"
        "RESULT_STORAGE_STORES_UNSAFE = True\n"
        "QUALITY = 80\n"
    )
    service = start_service(
        "thumbor",
        [str(binary), "-p", str(port), "-i", HOST, "-c", str(conf), "-l", "error", "--processes", str(CORES)],
        tmp / "thumbor.log",
    )
    wait_http(port, "/healthcheck", 60, service)
    return service, port


def start_ipx(tmp: Path, images: Path) -> tuple[Service, int]:
    entry = NODE_DIR / "node_modules" / "ipx" / "bin" / "ipx.mjs"
    if not entry.exists():
        raise RuntimeError(_install_error("ipx") or f"{entry} is missing")
    port = free_port()
    service = start_service(
        "ipx",
        ["node", str(entry), "serve", "--dir", str(images)],
        tmp / "ipx.log",
        env={"PORT": str(port), "HOST": HOST},
        cwd=NODE_DIR,
    )
    wait_http(port, "/w_16/photo.jpg", 60, service)
    return service, port


# The two ceilings: Granian's ASGI interface (the one konifer-edge runs on) and its native RSGI.
CEILINGS = {
    "granian_ceiling": ("asgi", "ceiling_app:app", "bare ASGI"),
    "granian_rsgi_ceiling": ("rsgi", "ceiling_rsgi:app", "bare RSGI"),
}


def start_ceiling(tmp: Path, static: Path, name: str) -> tuple[Service, int]:
    """A bare app on Granian (bench/ceiling_app.py, bench/ceiling_rsgi.py) serving the same bytes: the
    stack's own ceiling on one of its interfaces."""
    interface, target, _ = CEILINGS[name]
    port = free_port()
    granian = REPO / ".venv" / "bin" / "granian"
    options = ["--interface", interface, "--host", HOST, "--port", str(port), "--workers", str(KONIFER_WORKERS)]
    service = start_service(
        name,
        [str(granian), *options, "--loop", "auto", "--no-log", "--working-dir", str(BENCH), target],
        tmp / f"{name}.log",
        env={"BENCH_CEILING_FILE": str(static / "photo-400.jpg")},
        cwd=BENCH,
    )
    wait_http(port, "/", 30, service)
    return service, port


def _install_error(name: str) -> str | None:
    log_path = BENCH / "tmp" / f"install-{name}.log"
    if log_path.exists():
        text = log_path.read_text(errors="replace").strip()
        if text:
            return f"install of {name} failed: " + "\n".join(text.splitlines()[-15:])
    return None


def peer_versions() -> dict[str, Any]:
    versions: dict[str, Any] = {}
    python = THUMBOR_VENV / "bin" / "python"
    if python.exists():
        out = command_output(
            [
                str(python),
                "-c",
                (
                    "import json, importlib.metadata as m; "
                    "print(json.dumps({p: m.version(p) for p in ('thumbor', 'pillow')}))"
                ),
            ]
        )
        try:
            versions["thumbor"] = json.loads(out)
        except json.JSONDecodeError:
            versions["thumbor"] = {"error": out}
    if (NODE_DIR / "node_modules" / "ipx").exists():
        out = command_output(
            [
                "node",
                "-e",
                (
                    "const s=require('sharp');"
                    "const p=JSON.parse(require('fs').readFileSync('node_modules/ipx/package.json','utf8'));"
                    "console.log(JSON.stringify({ipx:p.version,sharp:s.versions.sharp,libvips:s.versions.vips,"
                    "node:process.versions.node}))"
                ),
            ],
            cwd=NODE_DIR,
        )
        try:
            versions["ipx"] = json.loads(_last_json_line(out))
        except (json.JSONDecodeError, ValueError):
            versions["ipx"] = {"error": out}
    return versions


def _last_json_line(text: str) -> str:
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            return line
    raise ValueError(text)
