"""The deployment files against the app: deploy/Dockerfile, deploy/docker-compose.yml, deploy/k8s.

Offline. The Kustomize trees are rendered with ``kubectl kustomize`` (those cases are skipped
without kubectl; the base's raw files are checked either way). Every Kubernetes document is
validated against the bundled OpenAPI schemas of Kubernetes 1.32 (kubernetes-validate,
strict: an unknown field fails); the ServiceMonitor (a CRD, not in those schemas) against
the small schema below and its selectors. Then against the app itself: probes on the paths
and ports it serves, args its own parser accepts, config files its own loaders accept with
the environment each container really gets (image ENV, ConfigMaps, Secrets, service links),
the image's uid, ports and files. The ``test_check_catches_*`` tests break a copy on purpose
to show that each check can fail.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml
from aiokafka import codec

from altseason.cli import build_parser
from altseason.web import CHECK_TIMEOUT_S, WORKER_PATHS
from foundation.config import Settings, load_settings
from foundation.errors import ConfigError
from producers.live.config import LiveConfig, load_live_config
from producers.live.web import PRODUCER_PATHS

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "docker-compose.yml"
K8S = DEPLOY / "k8s"
BASE = K8S / "base"
SECRET_EXAMPLE = BASE / "secret.example.yaml"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

#: the Kubernetes version the manifests are validated against (a schema set kubernetes-validate
#: bundles; it would silently fall back to an older one, so its presence is asserted)
K8S_VERSION = "1.32"
KUBECTL = shutil.which("kubectl")
SECRET_NAME = "altseason-secrets"
#: values standing in for the Secret's keys when a container's environment is evaluated
SECRET_VALUES = {"redis-url": "redis://:s3cret@redis.example.svc:6379/0"}
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job")


def _dashboard_paths() -> tuple[str, ...]:
    """GET paths the dashboard's own aiohttp app routes (no server started, nothing connected)."""
    from altseason.dashboard.server import create_app

    app = create_app(Settings())
    return tuple(sorted({r.resource.canonical for r in app.router.routes()
                         if r.method == "GET" and r.resource is not None}))


#: what each long-running command serves: the Settings field of its port, its GET paths
SERVED: dict[str, tuple[str, tuple[str, ...]]] = {
    "worker": ("web_port", WORKER_PATHS),
    "produce": ("producer_web_port", PRODUCER_PATHS),
    "dashboard": ("dashboard_port", _dashboard_paths()),
}


# --- the image: deploy/Dockerfile ---------------------------------------------------------

@dataclass
class Stage:
    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, op: str) -> list[str]:
        return [rest for o, rest in self.instructions if o == op]


@dataclass
class Image:
    stages: list[Stage]
    env: dict[str, str]
    uid: int
    gid: int
    workdir: str
    entrypoint: list[str]
    cmd: list[str]
    exposed: set[int]
    volumes: list[str]
    #: container path -> repository path of every COPY from the build context (final stage)
    files: dict[str, Path]


def parse_dockerfile(text: str) -> list[Stage]:
    """Stages with their (INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append((pending + line).strip())
        pending = ""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in lines:
        op, _, rest = line.partition(" ")
        op, rest = op.upper(), rest.strip()
        if op == "ARG" and not stages:
            key, _, value = rest.partition("=")
            args[key] = value
        elif op == "FROM":
            parts = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], parts[0])
            name = parts[2] if len(parts) > 2 and parts[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(base, name))
        else:
            assert stages, f"{op} before the first FROM"
            stages[-1].instructions.append((op, rest))
    return stages


def parse_env(rest: str) -> dict[str, str]:
    tokens = shlex.split(rest)
    if "=" not in tokens[0]:  # legacy ENV KEY VALUE
        return {tokens[0]: " ".join(tokens[1:])}
    return dict(token.split("=", 1) for token in tokens)


def parse_image(text: str) -> Image:
    stages = parse_dockerfile(text)
    final = stages[-1]
    env: dict[str, str] = {}
    workdir = "/"
    files: dict[str, Path] = {}
    for op, rest in final.instructions:
        if op == "ENV":
            env.update(parse_env(rest))
        elif op == "WORKDIR":
            workdir = os.path.join(workdir, rest)
        elif op == "COPY" and "--from" not in rest:
            *sources, dest = [t for t in shlex.split(rest) if not t.startswith("--")]
            for source in sources:
                files[os.path.normpath(os.path.join(workdir, dest))] = ROOT / source
    users = final.all("USER")
    match = re.fullmatch(r"(\d+):(\d+)", users[-1]) if users else None
    assert match, f"the final stage must end with USER uid:gid (numeric), got {users}"
    exposed = {int(port.split("/")[0]) for rest in final.all("EXPOSE") for port in rest.split()}
    volumes = [v for rest in final.all("VOLUME")
               for v in (json.loads(rest) if rest.startswith("[") else rest.split())]
    entrypoint = json.loads(final.all("ENTRYPOINT")[-1]) if final.all("ENTRYPOINT") else []
    cmd = json.loads(final.all("CMD")[-1]) if final.all("CMD") else []
    return Image(stages, env, int(match.group(1)), int(match.group(2)), workdir, entrypoint, cmd,
                 exposed, volumes, files)


IMAGE = parse_image(DOCKERFILE.read_text())
#: the environment every container of the image starts with (PATH aside)
IMAGE_ENV = {k: v for k, v in IMAGE.env.items() if k != "PATH"}


def image_file(image: Image, path: str, workdir: str | None = None) -> Path:
    """The repository file or directory the image holds at ``path`` (relative to WORKDIR)."""
    full = os.path.normpath(os.path.join(workdir or image.workdir, path))
    for dest, source in image.files.items():
        if full == dest or full.startswith(dest + "/"):
            return source / os.path.relpath(full, dest)
    raise AssertionError(f"{full} is not in the image (COPY: {sorted(image.files)})")


def parse_cli(args: list[str]) -> Any:
    """``altseason ARGS`` through the real parser; an AssertionError with its message if refused."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            return build_parser().parse_args(args)
        except SystemExit:
            raise AssertionError(f"altseason {shlex.join(args)}: {err.getvalue().strip()}") \
                from None


def check_dockerfile(image: Image) -> None:
    stages = image.stages
    assert len(stages) >= 2, "a builder stage and a runtime stage"
    assert {s.base for s in stages} == {"python:3.11-slim"}, [s.base for s in stages]
    builder, final = stages[0], stages[-1]
    installs = [r for r in builder.all("RUN") if "pip install" in r]
    assert any("--no-cache-dir" in r and re.search(r"pip install[^&;]* \.(\s|$)", r)
               for r in installs), f"the builder pip installs . with --no-cache-dir: {installs}"
    assert any("/opt/venv" in r for r in builder.all("RUN")), "the builder creates /opt/venv"
    from_copies = [r for r in final.all("COPY") if "--from" in r]
    assert from_copies == [f"--from={builder.name} /opt/venv /opt/venv"], from_copies
    for run in final.all("RUN"):
        tools = re.findall(r"\b(apt-get|apt|apk|pip3?|gcc|g\+\+|make|build-essential|"
                           r"python3?-dev|curl|wget)\b", run)
        assert not tools, f"the runtime stage installs or runs build tools {tools}: {run}"
    assert image.uid != 0 and image.gid != 0, "USER must not be root"
    assert any(f"--uid {image.uid}" in r and f"--gid {image.gid}" in r
               for r in final.all("RUN")), "the runtime stage creates the USER's uid and gid"
    assert image.env.get("PYTHONUNBUFFERED") == "1"
    assert "/opt/venv/bin" in image.env.get("PATH", ""), "the virtualenv's scripts on PATH"
    # the console script of pyproject, and a default command its parser accepts
    scripts = PYPROJECT["project"]["scripts"]
    assert len(image.entrypoint) == 1 and image.entrypoint[0] in scripts, image.entrypoint
    assert scripts[image.entrypoint[0]] == "altseason.cli:main"
    assert parse_cli(image.cmd).command == "worker", image.cmd
    # reachable web servers, each default port exposed, the table store on the volume
    settings = load_settings(env=IMAGE_ENV)
    for host in ("web_host", "producer_web_host", "dashboard_host"):
        assert getattr(settings, host) == "0.0.0.0", f"{host} must be 0.0.0.0 in a container"
    defaults = Settings()
    assert image.exposed == {defaults.web_port, defaults.producer_web_port,
                             defaults.dashboard_port}, image.exposed
    assert settings.datadir in image.volumes, (settings.datadir, image.volumes)
    assert any(f"chown {image.uid}:{image.gid} {settings.datadir}" in r
               for r in final.all("RUN")), "the datadir belongs to the USER"


def test_dockerfile_builds_a_venv_and_runs_it_as_a_non_root_user() -> None:
    check_dockerfile(IMAGE)


def test_dockerfile_copies_what_the_package_and_the_demo_need() -> None:
    builder = IMAGE.stages[0]
    copied = {source for rest in builder.all("COPY")
              for source in [t.rstrip("/") for t in shlex.split(rest)
                             if not t.startswith("--")][:-1]}
    packages = {p.rstrip("*").rstrip(".")
                for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]}
    needed = {"pyproject.toml", PYPROJECT["project"]["readme"], *packages}
    assert needed <= copied, f"the builder misses {needed - copied}"
    for source in copied:
        assert (ROOT / source).exists(), source
    # the demo data at the default `altseason replay` directory, the sample live config
    assert image_file(IMAGE, "data/replay").is_dir()
    assert list(image_file(IMAGE, "data/replay").glob("*.csv"))
    assert load_live_config(image_file(IMAGE, "examples/live.yaml")).sources


def test_project_data_files_are_declared_for_the_wheel() -> None:
    """The image installs the project as a wheel (not editable): a package's non-Python files
    (JSON Schemas, the dashboard's static files) get in only through package-data globs."""
    setuptools = PYPROJECT["tool"]["setuptools"]
    package_data: dict[str, list[str]] = setuptools.get("package-data", {})
    includes = setuptools["packages"]["find"]["include"]
    patterns = [re.compile(i.replace(".", r"\.").replace("*", ".*")) for i in includes]
    packages = sorted({name for top in ROOT.iterdir() if top.is_dir()
                       and any(p.fullmatch(top.name) for p in patterns)
                       for init in top.glob("**/__init__.py")
                       if any(p.fullmatch(name := ".".join(init.relative_to(ROOT).parent.parts))
                              for p in patterns)})
    declared = {path for package in packages
                for pattern in package_data.get(package, []) + package_data.get("*", [])
                for path in ROOT.joinpath(*package.split(".")).glob(pattern)}
    top_dirs = {package.split(".")[0] for package in packages}
    data = [path for top in sorted(top_dirs) for path in sorted((ROOT / top).rglob("*"))
            if path.is_file() and path.suffix not in (".py", ".pyc", ".pyi")
            and "__pycache__" not in path.parts]
    missing = [str(path.relative_to(ROOT)) for path in data if path not in declared]
    assert not missing, ("not in [tool.setuptools.package-data], so not in the image: "
                         f"{missing[:10]}{' ...' if len(missing) > 10 else ''}")


def test_project_declares_the_rocksdb_store_dependency() -> None:
    """The manifests and compose run the worker with store rocksdb://: faust needs rocksdict."""
    deps = " ".join(PYPROJECT["project"]["dependencies"]).lower()
    assert "rocksdict" in deps or "faust-streaming[rocksdict]" in deps, \
        "store rocksdb:// needs rocksdict in [project].dependencies"


# --- .dockerignore --------------------------------------------------------------------------

def _ignore_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i:end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern decides; a pattern also matches the parents."""
    parts = path.split("/")
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = _ignore_regex(pattern.lstrip("!").strip("/"))
        if any(regex.fullmatch("/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            ignored = not negate
    return ignored


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_dockerignore_keeps_the_context_small_but_not_what_the_image_copies() -> None:
    patterns = dockerignore_patterns()
    for heavy in (".venv", ".stack", ".git", ".mypy_cache", "tests/data/ws/x.txt",
                  "altseason/__pycache__/cli.cpython-311.pyc"):
        assert dockerignored(heavy, patterns), f"{heavy} is sent to the build"
    sources = [t.rstrip("/") for stage in IMAGE.stages for rest in stage.all("COPY")
               if "--from" not in rest
               for t in [t for t in shlex.split(rest) if not t.startswith("--")][:-1]]
    for source in sources:
        path = ROOT / source
        files = [path] if path.is_file() else [
            p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        kept = [p for p in files if not dockerignored(str(p.relative_to(ROOT)), patterns)]
        assert kept == files, f"COPY {source}: .dockerignore drops {set(files) - set(kept)}"


# --- docker compose ---------------------------------------------------------------------------

def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def compose_env(service: dict[str, Any]) -> dict[str, str]:
    """The service's environment as the container sees it: the image's, then the service's
    (a variable without a value is passed from the shell only when set there: left out)."""
    env = dict(IMAGE_ENV)
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) if "=" in item else (item, None) for item in raw)
    env.update({k: str(v) for k, v in raw.items() if v is not None})
    return env


def healthcheck_urls(service: dict[str, Any]) -> list[tuple[int, str]]:
    test = service["healthcheck"]["test"]
    text = " ".join(test) if isinstance(test, list) else test
    urls = re.findall(r"http://(?:127\.0\.0\.1|localhost):(\d+)(/[\w/-]*)", text)
    return [(int(port), path) for port, path in urls]


def check_compose(doc: dict[str, Any]) -> None:
    services = doc["services"]
    kafka, redis = services["kafka"], services["redis"]
    assert kafka["image"] == "apache/kafka:4.1.1"
    assert str(redis["image"]).split(":")[1].startswith("7"), redis["image"]
    kenv = {k: str(v) for k, v in kafka["environment"].items()}
    assert set(kenv["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}, "KRaft combined"
    assert f"{kenv['KAFKA_NODE_ID']}@" in kenv["KAFKA_CONTROLLER_QUORUM_VOTERS"]
    cluster_id = kenv["CLUSTER_ID"]
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16, \
        f"CLUSTER_ID {cluster_id!r} must be a base64 UUID (kafka-storage.sh random-uuid)"
    listeners = dict(item.split("://") for item in kenv["KAFKA_ADVERTISED_LISTENERS"].split(","))
    protocols = dict(item.split(":") for item in kenv["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
                     .split(","))
    bound = [item.split("://")[0] for item in kenv["KAFKA_LISTENERS"].split(",")]
    assert set(bound) <= set(protocols) and kenv["KAFKA_CONTROLLER_LISTENER_NAMES"] in bound
    assert kenv["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false", "altseason creates its topics"
    app_services = {name: s for name, s in services.items()
                    if s.get("build") or str(s.get("image", "")).startswith("altseason")}
    commands = set()
    for name, service in app_services.items():
        build = service["build"]
        assert (DEPLOY / build["context"]).resolve() == ROOT, f"{name}: build context"
        assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
        args = parse_cli(service["command"])
        commands.add(args.command)
        env = compose_env(service)
        settings = load_settings(env=env)
        # Kafka at an advertised listener, Redis at the redis service
        assert settings.kafka_bootstrap_servers in listeners.values(), \
            f"{name}: {settings.kafka_bootstrap_servers} is not advertised ({listeners})"
        assert urlsplit(settings.redis_url).hostname == "redis"
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"
        if args.command in SERVED:
            port_field, paths = SERVED[args.command]
            port = getattr(settings, port_field)
            urls = healthcheck_urls(service)
            assert urls, f"{name}: the healthcheck calls no endpoint"
            for url_port, path in urls:
                assert (url_port, path in paths) == (port, True), \
                    f"{name}: healthcheck {url_port}{path}, serves {paths} on {port}"
            assert any(p.split(":")[-2:] == [str(port), str(port)]
                       for p in service.get("ports", [])), f"{name}: port {port} not published"
        if args.command == "worker":
            assert settings.store == "rocksdb://"
            mounts = {v.split(":")[1]: v.split(":")[0] for v in service["volumes"]}
            assert mounts.get(settings.datadir) in (doc.get("volumes") or {}), \
                f"worker: {settings.datadir} is not a named volume"
        if args.command == "produce":
            with _env(compose_env(service)):
                load_live_config(image_file(IMAGE, args.live_config))
        if args.command in ("replay", "run"):
            assert image_file(IMAGE, str(args.data_dir)).is_dir()
    assert {"worker", "produce", "dashboard"} <= commands, commands


@contextlib.contextmanager
def _env(env: dict[str, str]) -> Iterator[None]:
    """os.environ as a container's (the live config reads its keys from there)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_compose_runs_kafka_redis_and_every_role_of_the_image() -> None:
    check_compose(compose())


# --- Kubernetes: the bundles ------------------------------------------------------------------

def render(path: Path) -> list[dict[str, Any]]:
    assert KUBECTL
    out = subprocess.run([KUBECTL, "kustomize", str(path)], capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode == 0, f"kubectl kustomize {path}: {out.stderr}"
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def raw_base() -> list[dict[str, Any]]:
    """The base's files as they are, generated ConfigMaps built by hand (no kubectl needed)."""
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    docs = [doc for name in kustomization["resources"]
            for doc in yaml.safe_load_all((BASE / name).read_text()) if doc]
    for generator in kustomization.get("configMapGenerator", []):
        data = {Path(name).name: (BASE / name).read_text() for name in generator.get("files", [])}
        data.update(literal.split("=", 1) for literal in generator.get("literals", []))
        docs.append({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": generator["name"]}, "data": data})
    return docs


def render_with_component(component: str, tmp: Path) -> list[dict[str, Any]]:
    """The base plus one of components/ (as an overlay would include it)."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "namespace": "altseason-test",
        "resources": [os.path.relpath(BASE, tmp)],
        "components": [os.path.relpath(K8S / "components" / component, tmp)],
    }))
    return render(tmp)


BUNDLES = ("base-files", "base", "overlays/dev", "overlays/prod", "components/replay")
_rendered: dict[str, list[dict[str, Any]]] = {}


@pytest.fixture(params=BUNDLES)
def bundle(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    name = request.param
    if name == "base-files":
        return raw_base()
    if KUBECTL is None:
        pytest.skip("kubectl (with kustomize) not installed: only the base's raw files are "
                    "checked, not the rendered base and overlays")
    if name not in _rendered:
        _rendered[name] = (render_with_component("replay", tmp_path_factory.mktemp("replay"))
                           if name.startswith("components/") else render(K8S / name))
    return copy.deepcopy(_rendered[name])


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [d for d in docs
            if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = find(docs, kind, name)
    assert len(found) == 1, f"{kind} {name}: found {len(found)}"
    return found[0]


@dataclass
class Container:
    workload: dict[str, Any]
    pod: dict[str, Any]
    spec: dict[str, Any]

    @property
    def where(self) -> str:
        return f"{self.workload['kind']}/{self.workload['metadata']['name']}/{self.spec['name']}"

    @property
    def command(self) -> str:
        return str((self.spec.get("args") or [""])[0])

    @property
    def ports(self) -> dict[str, int]:
        return {p.get("name", str(p["containerPort"])): p["containerPort"]
                for p in self.spec.get("ports", [])}


def pod_template(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]


def containers(docs: list[dict[str, Any]]) -> Iterator[Container]:
    for workload in docs:
        if workload["kind"] in WORKLOAD_KINDS:
            pod = pod_template(workload)["spec"]
            for spec in pod.get("initContainers", []) + pod["containers"]:
                yield Container(workload, pod, spec)


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A label selector (matchLabels, matchExpressions, or a Service's plain map)."""
    match = selector.get("matchLabels", selector if "matchExpressions" not in selector else {})
    if any(labels.get(k) != v for k, v in match.items() if k != "matchExpressions"):
        return False
    for expr in selector.get("matchExpressions", []):
        value, op = labels.get(expr["key"]), expr["operator"]
        if (op == "In" and value not in expr["values"]) or \
                (op == "NotIn" and value in expr["values"]) or \
                (op == "Exists" and value is None) or (op == "DoesNotExist" and value is not None):
            return False
    return True


def pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    return pod_template(workload)["metadata"]["labels"]


def service_link_env(docs: list[dict[str, Any]]) -> dict[str, str]:
    """What the kubelet injects for every Service with a cluster IP unless enableServiceLinks
    is false: ``<NAME>_SERVICE_HOST``, ``<NAME>_PORT=tcp://...``..."""
    env: dict[str, str] = {}
    for service in find(docs, "Service"):
        if service["spec"].get("clusterIP") == "None":
            continue
        name = service["metadata"]["name"].upper().replace("-", "_")
        port = service["spec"]["ports"][0]["port"]
        env |= {f"{name}_SERVICE_HOST": "10.96.0.10", f"{name}_SERVICE_PORT": str(port),
                f"{name}_PORT": f"tcp://10.96.0.10:{port}",
                f"{name}_PORT_{port}_TCP": f"tcp://10.96.0.10:{port}",
                f"{name}_PORT_{port}_TCP_PORT": str(port)}
    return env


def container_env(docs: list[dict[str, Any]], c: Container) -> dict[str, str]:
    """The container's environment: the image's, service links, envFrom, env (optional Secret
    keys absent, required ones with stand-in values)."""
    env = dict(IMAGE_ENV)
    if c.pod.get("enableServiceLinks", True):
        env |= service_link_env(docs)
    for source in c.spec.get("envFrom", []):
        assert "configMapRef" in source, f"{c.where}: envFrom {source}"
        cm = one(docs, "ConfigMap", source["configMapRef"]["name"])
        env |= {source.get("prefix", "") + k: v for k, v in cm.get("data", {}).items()}
    for item in c.spec.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
            continue
        ref = item["valueFrom"]
        if "secretKeyRef" in ref:
            secret = ref["secretKeyRef"]
            assert secret["name"] == SECRET_NAME, f"{c.where}: secret {secret['name']}"
            if not secret.get("optional"):
                assert secret["key"] in SECRET_VALUES, f"{c.where}: unknown key {secret['key']}"
                env[item["name"]] = SECRET_VALUES[secret["key"]]
        elif "configMapKeyRef" in ref:
            key = ref["configMapKeyRef"]
            env[item["name"]] = one(docs, "ConfigMap", key["name"])["data"][key["key"]]
        else:
            env[item["name"]] = "from-field"
    return env


def mounted_file(docs: list[dict[str, Any]], c: Container, path: str) -> str:
    """The text of a file the container reads, from the ConfigMap volume mounted there."""
    volumes = {v["name"]: v for v in c.pod.get("volumes", [])}
    for mount in c.spec.get("volumeMounts", []):
        if not path.startswith(mount["mountPath"].rstrip("/") + "/") \
                and path != mount["mountPath"]:
            continue
        volume = volumes.get(mount["name"])
        assert volume and "configMap" in volume, f"{c.where}: {path} is not from a ConfigMap"
        data = one(docs, "ConfigMap", volume["configMap"]["name"])["data"]
        relative = mount.get("subPath") or os.path.relpath(path, mount["mountPath"])
        items = {i["path"]: i["key"] for i in volume["configMap"].get("items", [])}
        key = items.get(relative, relative if not items else None)
        assert key in data, f"{c.where}: {path}: no key {relative} in the ConfigMap"
        return data[key]
    raise AssertionError(f"{c.where}: nothing is mounted at {path}")


def container_settings(docs: list[dict[str, Any]], c: Container, tmp: Path) -> Settings:
    """Settings as the container loads them: its ALTSEASON_CONFIG file and its environment."""
    env = container_env(docs, c)
    config = env.get("ALTSEASON_CONFIG")
    assert config, f"{c.where}: ALTSEASON_CONFIG is not set"
    local = tmp / f"{c.spec['name']}-config.yaml"
    local.write_text(mounted_file(docs, c, config))
    try:
        return load_settings(env=env | {"ALTSEASON_CONFIG": str(local)})
    except ConfigError as exc:
        raise AssertionError(f"{c.where}: {exc}") from None


def live_config(docs: list[dict[str, Any]], c: Container, tmp: Path) -> LiveConfig:
    path = parse_cli(c.spec["args"]).live_config
    local = tmp / f"{c.spec['name']}-live.yaml"
    local.write_text(mounted_file(docs, c, path))
    with _env(container_env(docs, c)):
        try:
            return load_live_config(local)
        except ConfigError as exc:
            raise AssertionError(f"{c.where}: {path}: {exc}") from None


# --- Kubernetes: the checks -------------------------------------------------------------------

SERVICE_MONITOR_SCHEMA = {
    # the fields of monitoring.coreos.com/v1 ServiceMonitor used here (prometheus-operator's
    # CRD); anything else is a typo until added
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object", "additionalProperties": False,
            "required": ["selector", "endpoints"],
            "properties": {
                "jobLabel": {"type": "string"},
                "namespaceSelector": {"type": "object"},
                "selector": {
                    "type": "object", "additionalProperties": False,
                    "properties": {
                        "matchLabels": {"type": "object",
                                        "additionalProperties": {"type": "string"}},
                        "matchExpressions": {"type": "array", "items": {
                            "type": "object", "additionalProperties": False,
                            "required": ["key", "operator"],
                            "properties": {
                                "key": {"type": "string"},
                                "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                                "values": {"type": "array", "items": {"type": "string"}}}}}}},
                "endpoints": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "additionalProperties": False, "required": ["port", "path"],
                    "properties": {
                        "port": {"type": "string"},
                        "path": {"type": "string", "pattern": "^/"},
                        "scheme": {"enum": ["http", "https"]},
                        "interval": {"type": "string", "pattern": r"^\d+(ms|s|m|h)$"},
                        "scrapeTimeout": {"type": "string", "pattern": r"^\d+(ms|s|m|h)$"},
                        "honorLabels": {"type": "boolean"},
                        "relabelings": {"type": "array"},
                        "metricRelabelings": {"type": "array"}}}},
            },
        },
    },
}


def check_schemas(docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        where = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        if doc.get("kind") == "ServiceMonitor":
            try:
                jsonschema.validate(doc, SERVICE_MONITOR_SCHEMA)
            except jsonschema.ValidationError as exc:
                raise AssertionError(f"{where}: {exc.json_path}: {exc.message}") from None
            continue
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            raise AssertionError(f"{where}: {path}: {exc.message}") from None
        except kubernetes_validate.SchemaNotFoundError as exc:
            raise AssertionError(f"{where}: {exc.message}") from None


def check_args(docs: list[dict[str, Any]]) -> None:
    workdir = IMAGE.workdir
    found = list(containers(docs))
    assert found, "no workload"
    for c in found:
        assert c.spec.get("command") in (None, IMAGE.entrypoint), \
            f"{c.where}: command {c.spec.get('command')} replaces the image's ENTRYPOINT"
        assert c.spec["image"].split("@")[0].split(":")[0].endswith("altseason"), c.spec["image"]
        assert c.spec.get("imagePullPolicy") != "Always" or ":" in c.spec["image"]
        args = parse_cli(c.spec.get("args") or IMAGE.cmd)
        if getattr(args, "data_dir", None) is not None:
            assert image_file(IMAGE, str(args.data_dir), c.spec.get("workingDir", workdir)).is_dir()


def check_probes(docs: list[dict[str, Any]], tmp: Path) -> None:
    for c in containers(docs):
        if c.workload["kind"] == "Job":
            continue
        assert c.command in SERVED, f"{c.where}: long-running {c.command!r} serves nothing known"
        port_field, paths = SERVED[c.command]
        settings = container_settings(docs, c, tmp)
        port = getattr(settings, port_field)
        assert getattr(settings, port_field.replace("port", "host")) == "0.0.0.0", \
            f"{c.where}: listens on {getattr(settings, port_field.replace('port', 'host'))}"
        assert port in c.ports.values(), \
            f"{c.where}: serves on {port} ({port_field}), containerPorts {c.ports}"
        for kind in ("livenessProbe", "readinessProbe"):
            assert kind in c.spec, f"{c.where}: no {kind}"
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            if kind not in c.spec:
                continue
            get = c.spec[kind].get("httpGet")
            assert get, f"{c.where}: {kind} is not an httpGet"
            assert get["path"] in paths, f"{c.where}: {kind} {get['path']}, serves {paths}"
            probe_port = c.ports.get(get["port"]) if isinstance(get["port"], str) else get["port"]
            assert probe_port == port, f"{c.where}: {kind} port {get['port']}, serves on {port}"
        ready = "/ready" if "/ready" in paths else "/health"
        assert c.spec["livenessProbe"]["httpGet"]["path"] == "/health", c.where
        assert c.spec["readinessProbe"]["httpGet"]["path"] == ready, c.where
        if ready == "/ready":  # Kafka and Redis are checked one after the other
            assert c.spec["readinessProbe"].get("timeoutSeconds", 1) > 2 * CHECK_TIMEOUT_S, \
                f"{c.where}: /ready may take {2 * CHECK_TIMEOUT_S} s"


def check_settings(docs: list[dict[str, Any]], tmp: Path) -> None:
    """Each container's effective settings load; the worker keeps its tables on its volume."""
    for c in containers(docs):
        settings = container_settings(docs, c, tmp)
        mounts = {m["mountPath"]: m["name"] for m in c.spec.get("volumeMounts", [])}
        if c.command == "worker":
            assert settings.store == "rocksdb://", f"{c.where}: store {settings.store}"
            assert settings.log_format == "json", c.where
            claims = [t["metadata"]["name"]
                      for t in c.workload["spec"].get("volumeClaimTemplates", [])]
            assert mounts.get(settings.datadir) in claims, \
                f"{c.where}: datadir {settings.datadir} is not on a volumeClaimTemplate"
            replicas = c.workload["spec"].get("replicas", 1)
            assert replicas <= settings.topic_partitions, \
                f"{c.where}: {replicas} replicas, {settings.topic_partitions} partitions"
            assert c.pod["terminationGracePeriodSeconds"] >= 60, c.where
            if replicas > 1:
                pod = c.pod
                assert pod.get("topologySpreadConstraints") or \
                    pod.get("affinity", {}).get("podAntiAffinity"), \
                    f"{c.where}: {replicas} workers without spreading"
        if c.command == "produce":
            live = live_config(docs, c, tmp)
            assert c.workload["spec"].get("replicas", 1) <= 1, "one producer (no duplicates)"
            assert c.workload["spec"].get("strategy", {}).get("type") == "Recreate", c.where
            assert c.pod["terminationGracePeriodSeconds"] > live.sink.flush_timeout_seconds, \
                f"{c.where}: killed before the queue is flushed"
            compression = live.sink.compression
            assert compression is None or getattr(codec, f"has_{compression}")(), \
                f"{c.where}: aiokafka cannot {compression} here (extra package missing)"


def check_security(docs: list[dict[str, Any]]) -> None:
    for workload in docs:
        if workload["kind"] not in WORKLOAD_KINDS:
            continue
        where = f"{workload['kind']}/{workload['metadata']['name']}"
        pod = pod_template(workload)["spec"]
        context = pod.get("securityContext", {})
        expected = {"runAsNonRoot": True, "runAsUser": IMAGE.uid, "runAsGroup": IMAGE.gid,
                    "fsGroup": IMAGE.gid, "seccompProfile": {"type": "RuntimeDefault"}}
        for key, value in expected.items():
            assert context.get(key) == value, f"{where}: securityContext.{key} = " \
                                              f"{context.get(key)!r}, want {value!r}"
        assert pod.get("automountServiceAccountToken") is False, where
        assert pod.get("enableServiceLinks") is False, \
            f"{where}: service links put ALTSEASON_<SERVICE>_PORT=tcp://... in the settings"
    for c in containers(docs):
        sc = c.spec.get("securityContext", {})
        assert sc.get("allowPrivilegeEscalation") is False, c.where
        assert sc.get("readOnlyRootFilesystem") is True, c.where
        assert sc.get("runAsNonRoot") is True, c.where
        assert sc.get("capabilities", {}).get("drop") == ["ALL"], c.where
        assert not sc.get("capabilities", {}).get("add"), c.where
        assert sc.get("seccompProfile", {"type": "RuntimeDefault"}) == {"type": "RuntimeDefault"}
        assert sc.get("runAsUser", IMAGE.uid) == IMAGE.uid, c.where
        volumes = {v["name"]: v for v in c.pod.get("volumes", [])}
        tmp = [m for m in c.spec.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
        assert tmp and "emptyDir" in volumes[tmp[0]["name"]], f"{c.where}: no writable /tmp"
        resources = c.spec.get("resources", {})
        for key in ("requests.cpu", "requests.memory", "limits.memory"):
            group, name = key.split(".")
            assert name in resources.get(group, {}), f"{c.where}: no resources.{key}"
        assert not c.spec["image"].endswith(":latest"), c.where


def check_wiring(docs: list[dict[str, Any]]) -> None:
    """Services, PodDisruptionBudgets and the StatefulSet's serviceName reach real pods/ports."""
    workloads = [d for d in docs if d["kind"] in WORKLOAD_KINDS]
    for service in find(docs, "Service"):
        name = service["metadata"]["name"]
        targets = [w for w in workloads if selects(service["spec"]["selector"], pod_labels(w))]
        assert len(targets) == 1, f"Service {name} selects {len(targets)} workloads"
        ports = {p.get("name"): p["containerPort"]
                 for c in pod_template(targets[0])["spec"]["containers"] for p in c["ports"]}
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            assert target in (ports if isinstance(target, str) else ports.values()), \
                f"Service {name}: targetPort {target} not in {ports}"
    for sts in find(docs, "StatefulSet"):
        governing = one(docs, "Service", sts["spec"]["serviceName"])
        assert governing["spec"].get("clusterIP") == "None", "serviceName must be headless"
        assert selects(governing["spec"]["selector"], pod_labels(sts))
        assert find(docs, "PodDisruptionBudget"), "no PodDisruptionBudget"
    for pdb in find(docs, "PodDisruptionBudget"):
        targets = [w for w in workloads if selects(pdb["spec"]["selector"], pod_labels(w))]
        assert targets, f"PDB {pdb['metadata']['name']} selects nothing"
        min_available = pdb["spec"].get("minAvailable")
        for target in targets:
            assert not isinstance(min_available, int) or \
                min_available < target["spec"].get("replicas", 1), \
                f"PDB {pdb['metadata']['name']}: blocks every drain"
    for worker in find(docs, "StatefulSet"):
        assert any(selects(p["spec"]["selector"], pod_labels(worker))
                   for p in find(docs, "PodDisruptionBudget")), "the worker has no PDB"
    for monitor in find(docs, "ServiceMonitor"):
        services = [s for s in find(docs, "Service")
                    if selects(monitor["spec"]["selector"], s["metadata"].get("labels", {}))]
        scraped = set()
        for service in services:
            workload = next(w for w in workloads
                            if selects(service["spec"]["selector"], pod_labels(w)))
            command = pod_template(workload)["spec"]["containers"][0]["args"][0]
            scraped.add(command)
            for endpoint in monitor["spec"]["endpoints"]:
                assert endpoint["port"] in {p.get("name") for p in service["spec"]["ports"]}
                assert endpoint["path"] in SERVED[command][1], \
                    f"ServiceMonitor scrapes {endpoint['path']} of {command}"
        assert scraped == {"worker", "produce"}, f"ServiceMonitor scrapes {scraped}"


def _allowed(policies: list[dict[str, Any]], labels: dict[str, str], kind: str
             ) -> set[tuple[str, int]] | None:
    """(protocol, port) a pod may use in direction ``kind``; None when no policy selects it."""
    selecting = [p for p in policies if kind in p["spec"]["policyTypes"]
                 and selects(p["spec"]["podSelector"], labels)]
    if not selecting:
        return None
    return {(port.get("protocol", "TCP"), port["port"])
            for p in selecting for rule in p["spec"].get(kind.lower(), [])
            for port in rule.get("ports", [])}


def source_ports(live: LiveConfig) -> set[int]:
    """TCP ports of the live sources' URLs (443 for those that take ccxt's defaults)."""
    ports = {443}
    for source in live.sources:
        for value in vars(source).values():
            for url in value if isinstance(value, list | tuple) else [value]:
                if isinstance(url, str) and re.match(r"(wss?|https?)://", url):
                    parts = urlsplit(url)
                    ports.add(parts.port or (443 if parts.scheme in ("https", "wss") else 80))
    return ports


def check_network(docs: list[dict[str, Any]], tmp: Path) -> None:
    policies = find(docs, "NetworkPolicy")
    for c in containers(docs):
        labels = pod_labels(c.workload)
        settings = container_settings(docs, c, tmp)
        egress = _allowed(policies, labels, "Egress")
        assert egress is not None, f"{c.where}: no egress policy"
        needed = {("UDP", 53), ("TCP", 53)}
        needed |= {("TCP", int(server.rsplit(":", 1)[1]))
                   for server in settings.kafka_bootstrap_servers.split(",")}
        if c.command in ("worker", "dashboard"):
            needed.add(("TCP", urlsplit(settings.redis_url).port or 6379))
        if c.command == "produce":
            needed |= {("TCP", port) for port in source_ports(live_config(docs, c, tmp))}
        assert needed <= egress, f"{c.where}: egress misses {needed - egress}"
        if c.command in SERVED:
            port = getattr(settings, SERVED[c.command][0])
            ingress = _allowed(policies, labels, "Ingress")
            assert ingress is not None, f"{c.where}: no ingress policy"
            assert ingress == {("TCP", port)}, f"{c.where}: ingress {ingress}, serves on {port}"
    for policy in policies:
        if "Ingress" in policy["spec"]["policyTypes"]:
            peers = [peer for rule in policy["spec"]["ingress"] for peer in rule["from"]]
            assert {"podSelector": {}} in peers, "the namespace's own pods"
            assert any("namespaceSelector" in peer for peer in peers), "the monitoring namespace"


def check_namespace_and_secrets(docs: list[dict[str, Any]], overlay: bool) -> None:
    namespaces = {d["metadata"].get("namespace") for d in docs}
    if overlay:
        assert len(namespaces) == 1 and None not in namespaces, namespaces
    else:
        assert namespaces == {None}, "the base must stay namespace-agnostic"
    assert not find(docs, "Secret"), "credentials are not committed (secret.example.yaml)"


def test_kubernetes_validate_bundles_the_pinned_version() -> None:
    from kubernetes_validate.utils import all_versions

    assert f"{K8S_VERSION}.0" in all_versions()


def test_manifests_validate_against_the_kubernetes_schemas(bundle: list[dict[str, Any]]) -> None:
    check_schemas(bundle)


def test_containers_run_real_commands(bundle: list[dict[str, Any]]) -> None:
    check_args(bundle)


def test_probes_hit_served_paths_on_the_configured_ports(bundle: list[dict[str, Any]],
                                                         tmp_path: Path) -> None:
    check_probes(bundle, tmp_path)


def test_settings_and_live_config_load_in_every_container(bundle: list[dict[str, Any]],
                                                          tmp_path: Path) -> None:
    check_settings(bundle, tmp_path)


def test_pods_are_locked_down(bundle: list[dict[str, Any]]) -> None:
    check_security(bundle)


def test_services_budgets_and_monitors_reach_real_pods(bundle: list[dict[str, Any]]) -> None:
    check_wiring(bundle)


def test_network_policies_allow_what_each_container_needs(bundle: list[dict[str, Any]],
                                                          tmp_path: Path) -> None:
    check_network(bundle, tmp_path)


def test_base_is_namespace_agnostic_and_secret_free() -> None:
    check_namespace_and_secrets(raw_base(), overlay=False)
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    assert "namespace" not in kustomization
    used = set(kustomization["resources"]) | {
        f for g in kustomization.get("configMapGenerator", []) for f in g.get("files", [])}
    files = {p.name for p in BASE.glob("*.yaml")} - {"kustomization.yaml"}
    assert files - used == {SECRET_EXAMPLE.name}, f"files not in the kustomization: {files - used}"


@pytest.mark.parametrize("component", sorted(p.name for p in (K8S / "components").iterdir()))
def test_component_files_validate_without_rendering(component: str) -> None:
    kustomization = yaml.safe_load((K8S / "components" / component / "kustomization.yaml")
                                   .read_text())
    assert kustomization["kind"] == "Component"
    docs = [doc for name in kustomization["resources"]
            for doc in yaml.safe_load_all((K8S / "components" / component / name).read_text())
            if doc]
    check_schemas(docs)
    check_security(docs)
    check_namespace_and_secrets(docs, overlay=False)


@pytest.mark.skipif(KUBECTL is None, reason="kubectl (with kustomize) not installed")
@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_overlays_set_namespace_image_and_scale(overlay: str, tmp_path: Path) -> None:
    docs = render(K8S / "overlays" / overlay)
    check_namespace_and_secrets(docs, overlay=True)
    worker = one(docs, "StatefulSet", "altseason-worker")
    c = next(c for c in containers(docs) if c.workload is worker)
    settings = container_settings(docs, c, tmp_path)
    replicas = worker["spec"]["replicas"]
    assert ":" in c.spec["image"], "overlays pin the image tag"
    if overlay == "dev":
        assert replicas == 1 and settings.log_level == "info"
    else:
        # room to scale: every worker gets partitions, up to topic_partitions workers
        assert 1 < replicas < settings.topic_partitions
        assert settings.topic_replication_factor == 3
        assert find(docs, "ServiceMonitor")


def test_secret_example_documents_every_key_the_manifests_read() -> None:
    text = SECRET_EXAMPLE.read_text()
    secret = yaml.safe_load(text)
    check_schemas([secret])
    assert secret["metadata"]["name"] == SECRET_NAME
    docs = raw_base()
    if KUBECTL is not None:
        docs += render(K8S / "overlays" / "prod")
    refs = {(item["valueFrom"]["secretKeyRef"]["key"],
             bool(item["valueFrom"]["secretKeyRef"].get("optional")))
            for c in containers(docs) for item in c.spec.get("env", [])
            if "secretKeyRef" in item.get("valueFrom", {})}
    assert refs
    for key, optional in refs:
        if optional:
            assert key in text, f"{SECRET_EXAMPLE.name} does not mention the optional {key}"
        else:
            assert key in secret["stringData"], f"{SECRET_EXAMPLE.name} lacks {key}"
            assert key in SECRET_VALUES


def test_config_map_files_load_with_an_empty_environment(tmp_path: Path) -> None:
    data = one(raw_base(), "ConfigMap", "altseason-config")["data"]
    (tmp_path / "config.yaml").write_text(data["config.yaml"])
    settings = load_settings(tmp_path / "config.yaml", env={})
    assert (settings.store, settings.datadir, settings.log_format) == (
        "rocksdb://", IMAGE_ENV["ALTSEASON_DATADIR"], "json")
    (tmp_path / "live.yaml").write_text(data["live.yaml"])
    with _env({}):
        assert load_live_config(tmp_path / "live.yaml").sources


# --- each check can fail ------------------------------------------------------------------------

def _worker(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return pod_template(one(docs, "StatefulSet", "altseason-worker"))["spec"]["containers"][0]


def test_check_catches_a_probe_path_typo(tmp_path: Path) -> None:
    docs = raw_base()
    _worker(docs)["readinessProbe"]["httpGet"]["path"] = "/readyz"
    with pytest.raises(AssertionError, match="/readyz"):
        check_probes(docs, tmp_path)


def test_check_catches_a_probe_on_the_wrong_port(tmp_path: Path) -> None:
    docs = raw_base()
    _worker(docs)["livenessProbe"]["httpGet"]["port"] = 6067
    with pytest.raises(AssertionError, match="livenessProbe port"):
        check_probes(docs, tmp_path)


def test_check_catches_a_port_the_settings_do_not_serve(tmp_path: Path) -> None:
    docs = raw_base()
    for item in one(docs, "ConfigMap", "altseason-config")["data"].items():
        one(docs, "ConfigMap", "altseason-config")["data"][item[0]] = item[1].replace(
            "web_port: 6066", "web_port: 7000")
    with pytest.raises(AssertionError, match="serves on 7000"):
        check_probes(docs, tmp_path)


def test_check_catches_an_unknown_command() -> None:
    docs = raw_base()
    _worker(docs)["args"] = ["wrker"]
    with pytest.raises(AssertionError, match="invalid choice"):
        check_args(docs)


def test_check_catches_a_writable_root_filesystem() -> None:
    docs = raw_base()
    del _worker(docs)["securityContext"]["readOnlyRootFilesystem"]
    with pytest.raises(AssertionError, match="altseason-worker/worker"):
        check_security(docs)


def test_check_catches_a_misspelt_field() -> None:
    docs = raw_base()
    worker = _worker(docs)
    worker["readinessprobe"] = worker.pop("readinessProbe")
    with pytest.raises(AssertionError, match="readinessprobe"):
        check_schemas(docs)


def test_check_catches_service_links_breaking_the_settings(tmp_path: Path) -> None:
    docs = raw_base()
    for workload in docs:
        if workload["kind"] in WORKLOAD_KINDS:
            del pod_template(workload)["spec"]["enableServiceLinks"]
    # the kubelet's ALTSEASON_DASHBOARD_PORT=tcp://... is read as the dashboard_port setting
    with pytest.raises(AssertionError, match="dashboard_port"):
        check_settings(docs, tmp_path)


def test_check_catches_more_workers_than_partitions(tmp_path: Path) -> None:
    docs = raw_base()
    one(docs, "StatefulSet", "altseason-worker")["spec"]["replicas"] = 4
    with pytest.raises(AssertionError, match="4 replicas, 3 partitions"):
        check_settings(docs, tmp_path)


def test_check_catches_a_blocked_exchange_port(tmp_path: Path) -> None:
    docs = raw_base()
    policy = one(docs, "NetworkPolicy", "altseason-producers-egress")
    policy["spec"]["egress"][0]["ports"] = [{"protocol": "TCP", "port": 443}]
    with pytest.raises(AssertionError, match="9443"):  # Binance spot streams
        check_network(docs, tmp_path)


def test_check_catches_a_root_user_and_build_tools_in_the_image() -> None:
    text = DOCKERFILE.read_text()
    with pytest.raises(AssertionError, match="USER"):
        parse_image(text.replace("USER 10001:10001", "USER root"))
    broken = text.replace('ENTRYPOINT ["altseason"]',
                          'RUN apt-get install -y gcc\nENTRYPOINT ["altseason"]')
    with pytest.raises(AssertionError, match="build tools"):
        check_dockerfile(parse_image(broken))


def test_check_catches_a_compose_healthcheck_on_the_wrong_path() -> None:
    doc = compose()
    doc["services"]["producers"]["healthcheck"]["test"][-1] = \
        doc["services"]["producers"]["healthcheck"]["test"][-1].replace("/ready", "/status")
    with pytest.raises(AssertionError, match="/status"):
        check_compose(doc)
