"""`hostctl export --to z2jh`: hostd.toml as a Zero to JupyterHub values file, validated against
the chart's own published values schema (tests/hostd/cli/data/z2jh: chart 4.4.0, BSD-3-Clause;
SOURCE.md says how it was made), coalesced with the chart's defaults as Helm does."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from hostd.cli.export_z2jh import CHART_VERSION, z2jh_values
from hostd.cli.hostctl import main
from hostd.config import parse_config

DATA = Path(__file__).parent / "data" / "z2jh"
SHIPPED = Path(__file__).resolve().parents[3] / "packaging" / "hostd.toml"
Capture = pytest.CaptureFixture[str]

RICH = """\
[daemon]
allowed_users = ["carol"]
allowed_groups = ["students"]
[session]
mem_limit = "2G"
cpu_limit = 1.5
isolate_tmp = true
isolate_devices = true
readonly_paths = ["{data}"]
readwrite_paths = ["/tmp", "/home/{{USERNAME}}", "{out}"]
shared_paths = ["{data}"]
environment = {{ LANG = "C.UTF-8" }}
unit_extra_properties = {{ TasksMax = 512 }}
[commands]
singleuser = ["/opt/hostd/bin/hostd-session-exec", "/opt/hostd/session/bin/jupyterhub-singleuser",
              "--ip=127.0.0.1", "--port={{PORT}}", "--SingleUserNotebookApp.default_url=/lab"]
lab = ["/opt/hostd/bin/hostd-session-exec", "/opt/hostd/session/bin/jupyterhub-singleuser",
       "--ip=127.0.0.1", "--port={{PORT}}", "--SingleUserNotebookApp.default_url=/lab/tree"]
[[profile_list]]
slug = "small"
display_name = "Small: 1 GB, 1 CPU"
description = "For teaching"
mem_limit = "1G"
cpu_limit = 1.0
[[profile_list]]
slug = "gpu"
display_name = "GPU"
default = true
command = "lab"
gpus = 1
groups = ["gpu"]
[gpus]
devices = [["/dev/null"]]
[profiles.users.alice]
mem_limit = "8G"
[profiles.groups.staff]
cpu_limit = 4.0
[profiles.groups.gpu]
mem_limit = "16G"
[capacity]
idle_timeout = 3600
[auth]
admin_users = ["alice"]
"""


def coalesce(defaults: Any, values: Any) -> Any:
    """Helm's merge of a chart's values.yaml with the user's: tables deeply, anything else
    (lists too) replaced; null removes the key."""
    if not isinstance(defaults, dict) or not isinstance(values, dict):
        return copy.deepcopy(values)
    merged = copy.deepcopy(defaults)
    for key, value in values.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = coalesce(merged.get(key), value)
    return merged


def validate(values: dict[str, Any]) -> None:
    schema = json.loads((DATA / "values.schema.json").read_text())
    defaults = yaml.safe_load((DATA / "values.yaml").read_text())
    jsonschema.validate(coalesce(defaults, values), schema)


@pytest.fixture
def rich(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "out").mkdir()
    path = tmp_path / "hostd.toml"
    path.write_text(RICH.format(data=tmp_path / "data", out=tmp_path / "out"))
    return path


def test_the_data_says_its_chart_version_and_licence() -> None:
    source = (DATA / "SOURCE.md").read_text()
    assert f"version {CHART_VERSION}" in source
    assert "BSD 3-Clause" in (DATA / "LICENSE").read_text()


def test_the_schema_refuses_what_the_chart_refuses() -> None:
    """The check can fail: values the chart's schema refuses are refused here."""
    validate({})
    for bad in (
        {"singleuser": {"cpu": {"limit": "1.5"}}},  # a number, not a string
        {"singleuser": {"memory": {"limt": "2G"}}},  # no such key
        {"cull": {"timeout": 3600.5}},  # a whole number
        {"hub": {"config": {"kubeSpawner": {}}}},  # a class name starts with a capital
    ):
        with pytest.raises(jsonschema.ValidationError):
            validate(bad)


def test_a_rich_config_exports_to_values_the_chart_accepts(rich: Path, tmp_path: Path) -> None:
    values, gaps = z2jh_values(parse_config(rich.read_text(), source=rich))
    validate(values)
    single = values["singleuser"]
    assert single["memory"] == {"limit": "2G"}
    assert single["cpu"] == {"limit": 1.5}
    assert single["cmd"] == ["jupyterhub-singleuser", "--SingleUserNotebookApp.default_url=/lab"]
    assert single["extraEnv"] == {"LANG": "C.UTF-8", "SHELL": "/bin/bash"}
    mounts = single["storage"]["extraVolumeMounts"]
    assert [(m["mountPath"], m["readOnly"]) for m in mounts] == [
        (str(tmp_path / "data"), True),  # once, though both shared and read-only
        (str(tmp_path / "out"), False),
    ]
    volumes = {v["name"]: v["hostPath"]["path"] for v in single["storage"]["extraVolumes"]}
    assert {m["name"] for m in mounts} == set(volumes)
    assert single["networkPolicy"] == {"egressAllowRules": {"cloudMetadataServer": False}}
    hub = values["hub"]
    assert hub["config"]["Authenticator"] == {"admin_users": ["alice"], "allowed_users": ["carol"]}
    overrides = hub["config"]["KubeSpawner"]["group_overrides"]
    # JupyterHub applies them in key order, the last winning; hostd's first group wins.
    assert [overrides[k]["groups"] for k in sorted(overrides)] == [["gpu"], ["staff"]]
    assert overrides[max(overrides)]["spawner_override"] == {"cpu_limit": 4.0}
    assert values["cull"] == {"enabled": True, "timeout": 3600, "users": False}
    # [[profile_list]] is KubeSpawner's profile_list, in its own words.
    assert single["profileList"] == [
        {
            "display_name": "Small: 1 GB, 1 CPU",
            "slug": "small",
            "description": "For teaching",
            "kubespawner_override": {"mem_limit": "1G", "cpu_limit": 1.0},
        },
        {
            "display_name": "GPU",
            "slug": "gpu",
            "default": True,
            "kubespawner_override": {
                "cmd": ["jupyterhub-singleuser", "--SingleUserNotebookApp.default_url=/lab/tree"],
                "extra_resource_limits": {"nvidia.com/gpu": "1"},
            },
        },
    ]
    said = "\n".join(gaps)
    for gap in (
        "the profile of user alice",
        "writable path /tmp",
        "/home/{USERNAME}",
        "isolate_tmp",
        "unit_extra_properties",
        "allowed_groups students",
        "--ip=127.0.0.1 --port={PORT}",
        "hostPath volumes are one node's directories",
        "[[profile_list]] gpu is shown to groups gpu only",
    ):
        assert gap in said


def test_the_shipped_config_exports_too(tmp_path: Path, capsys: Capture) -> None:
    path = tmp_path / "hostd.toml"
    shutil.copyfile(SHIPPED, path)
    out_file = tmp_path / "values.yaml"
    assert main(["export", "--to", "z2jh", "--config", str(path), "-o", str(out_file)]) == 0
    assert f"wrote {out_file}" in capsys.readouterr().out
    text = out_file.read_text()
    assert text.startswith(f"# Zero to JupyterHub (chart {CHART_VERSION}) values")
    assert "# No equivalent, or only a structural one" in text
    values = yaml.safe_load(text)
    validate(values)
    assert values["cull"] == {"enabled": False}


def test_the_cli_prints_the_file_and_refuses_a_bad_config(
    rich: Path, tmp_path: Path, capsys: Capture
) -> None:
    assert main(["export", "--to", "z2jh", "--config", str(rich)]) == 0
    printed = capsys.readouterr().out
    validate(yaml.safe_load(printed))
    assert "# - the profile of user alice" in printed

    assert main(["export", "--to", "z2jh", "--config", str(tmp_path / "none.toml")]) == 1
    assert "none.toml: no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("[session]\nmem_limit = 'lots'\n")
    assert main(["export", "--to", "z2jh", "--config", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "does not pass hostctl check-config" in err and "Traceback" not in err
    assert main(["export", "--to", "k8s"]) == 2
