"""`image:` services without an engine: the spec's rules (exactly one of command and image;
args, cwd), what the container is given (environment, network, mounts, names, labels), what
the run records for the reaper, and engine discovery's refusals."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from trustproof.errors import SandboxError, SpecError
from trustproof.sandbox import containers, engine
from trustproof.sandbox.backend import PidRegistry, ProcessSpec
from trustproof.sandbox.rundir import RunDir
from trustproof.sandbox.services import service_process
from trustproof.spec.load import parse_spec

SPEC = """\
trust_domain: t.test
services:
  api:
{body}
"""


def parse(tmp_path: Path, body: str) -> object:
    return parse_spec(SPEC.format(body=body), tmp_path / "trustproof.yaml", policies=False)


def problems(tmp_path: Path, body: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse(tmp_path, body)
    return [p.render().splitlines()[0] for p in info.value.problems]


def test_an_image_service_is_a_service(tmp_path: Path) -> None:
    spec = parse_spec(
        SPEC.format(body="    image: localhost/api:1.0\n    args: python3 app.py\n    port: 9000"),
        tmp_path / "trustproof.yaml",
        policies=False,
    )
    service = spec.services["api"]
    assert (service.image, service.args, service.command) == (
        "localhost/api:1.0",
        ("python3", "app.py"),
        (),
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("    port: 9000", "services.api: service 'api' has neither command nor image"),
        (
            "    command: [x]\n    image: localhost/api\n    port: 9000",
            "services.api.image: service 'api' has both command and image",
        ),
        (
            "    command: [x]\n    args: [y]\n    port: 9000",
            "services.api.args: args applies only to services with an image",
        ),
        (
            "    image: 'Local Host/API'\n    port: 9000",
            "services.api.image: 'Local Host/API' is not an image reference",
        ),
        (
            "    image: localhost/api\n    cwd: .\n    port: 9000",
            "services.api.cwd: cwd applies only to services with a command",
        ),
    ],
)
def test_command_and_image_are_exclusive(tmp_path: Path, body: str, expected: str) -> None:
    assert any(head.endswith(expected) for head in problems(tmp_path, body)), problems(
        tmp_path, body
    )


def test_the_process_spec_of_an_image_names_its_mounts(tmp_path: Path) -> None:
    spec = parse_spec(
        SPEC.format(body="    image: localhost/api:1.0\n    port: 9000"),
        tmp_path / "trustproof.yaml",
        policies=False,
    )
    run = RunDir.create(tmp_path / "run")
    process = service_process(spec, "api", run, {"TRUSTPROOF_PORT": "9000"})
    assert process.image == "localhost/api:1.0"
    assert process.argv == ()  # the image's own command
    assert process.mounts == (run.identity("api"),)
    assert process.netns_path is None


def test_what_the_container_is_given(tmp_path: Path) -> None:
    env = {"PATH": "/venv/bin", "HOME": "/root", "TRUSTPROOF_PORT": "9000", "MINE": "1"}
    assert containers.container_env(env) == {"TRUSTPROOF_PORT": "9000", "MINE": "1"}
    assert containers.network_mode(None) == "host"
    assert containers.network_mode(Path("/run/netns/tp-1-api")) == "ns:/run/netns/tp-1-api"
    assert containers.mounts_of((Path("/r/identities/api"),)) == {
        "/r/identities/api": {"bind": "/r/identities/api", "mode": "ro"}
    }
    run = RunDir.create(tmp_path / "run")
    other = RunDir.create(tmp_path / "other")
    assert containers.run_id(run) != containers.run_id(other)
    assert containers.container_name(run, "api") == f"tp-{containers.run_id(run)}-api"


def test_the_record_is_read_back_and_a_bad_line_skipped(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run")
    assert containers.recorded(run) == []
    assert containers.remove_recorded(run) == []  # nothing recorded: nothing to do
    lines = [
        json.dumps({"engine": "podman", "url": "unix:///x.sock"}),
        "not json",
        json.dumps({"container": "abc", "service": "api"}),
    ]
    (run.path / containers.RECORD_FILE).write_text("\n".join(lines) + "\n")
    assert containers.recorded(run) == [
        {"engine": "podman", "url": "unix:///x.sock"},
        {"container": "abc", "service": "api"},
    ]


def test_a_process_spec_without_an_image_is_refused(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run")
    backend = containers.ContainerBackend(run, PidRegistry(run.pids), lambda: bytes(32))
    spec = ProcessSpec("api", ("x",), tmp_path, {}, run.service_log("api"))
    with pytest.raises(SandboxError, match="has no image"):
        asyncio.run(backend.start(spec))


def no_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> RunDir:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr(engine, "DOCKER_SOCKET", tmp_path / "no-docker.sock")
    return RunDir.create(tmp_path / "run")


def test_no_engine_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = no_engine(monkeypatch, tmp_path)
    monkeypatch.setattr(engine.shutil, "which", lambda name: None)
    with pytest.raises(SandboxError, match="no container engine") as info:
        engine.connect(run, PidRegistry(run.pids))
    assert "apt-get install -y podman runc" in info.value.hint


def test_podman_needs_root_and_runc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = no_engine(monkeypatch, tmp_path)
    monkeypatch.setattr(engine.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(engine.os, "geteuid", lambda: 1000)
    with pytest.raises(SandboxError, match="not root"):
        engine.connect(run, PidRegistry(run.pids))
    monkeypatch.setattr(engine.os, "geteuid", lambda: 0)
    monkeypatch.setattr(engine.shutil, "which", lambda name: None if name == "runc" else "/x")
    with pytest.raises(SandboxError, match="runc is not"):
        engine.connect(run, PidRegistry(run.pids))


def test_podman_settings_and_socket_place(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run")
    conf = engine.write_podman_conf(run).read_text()
    for setting in ('runtime = "runc"', 'cgroup_manager = "cgroupfs"', "default_ulimits = []"):
        assert setting in conf
    assert engine.socket_path(run) == run.path / "podman" / "podman.sock"
    deep = RunDir.create(tmp_path / ("d" * 120))
    assert str(engine.socket_path(deep)).startswith("/run/trustproof-")


def test_the_example_is_valid_and_its_schema_says_one_of_command_and_image() -> None:
    import jsonschema  # noqa: PLC0415
    import yaml  # noqa: PLC0415

    from trustproof.spec import load_spec  # noqa: PLC0415
    from trustproof.spec.schema import json_schema  # noqa: PLC0415

    example = Path(__file__).resolve().parents[2] / "examples" / "containers" / "trustproof.yaml"
    spec = load_spec(example)
    assert spec.services["notes"].image == "localhost/trustproof-example-notes:latest"
    document = yaml.safe_load(example.read_text())
    jsonschema.validate(document, json_schema())
    document["services"]["notes"]["command"] = ["python3", "notes.py"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, json_schema())


def test_doctor_asks_for_podman_only_without_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    from trustproof.cli import doctor  # noqa: PLC0415

    example = Path(__file__).resolve().parents[2] / "examples" / "containers" / "trustproof.yaml"
    monkeypatch.setenv("DOCKER_HOST", "unix:///somewhere/docker.sock")
    assert "podman" not in doctor._needs(example)
    if Path("/var/run/docker.sock").exists():
        pytest.skip("this machine has a Docker socket: Podman is never needed here")
    monkeypatch.delenv("DOCKER_HOST")
    assert "podman" in doctor._needs(example)
    shop = Path(__file__).resolve().parents[2] / "examples" / "shop" / "trustproof.yaml"
    assert "podman" not in doctor._needs(shop)
