from pathlib import Path

import pytest

from swampd.config import ConfigError, load_config


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "swampd.toml"
    path.write_text(text)
    return str(path)


def test_no_file_gives_a_working_single_host_default(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    config = load_config(None)
    assert config.scheduler.kind == "local"
    assert config.agentmonitor.host == "127.0.0.1" and config.agentmonitor.port == 8084
    assert config.agentmonitor.state_dir == tmp_path / "swampd"
    assert config.viewers["CodeDX"].platform == "process"
    assert config.url == "http://127.0.0.1:8084/"


def test_full_file(tmp_path):
    config = load_config(write(tmp_path, """
[agentmonitor]
host = "127.0.0.1"
port = 9000
state_dir = "/tmp/x"
[scheduler]
kind = "local"
[viewers.CodeDX]
platform = "process"
command = ["python3", "-m", "http.server", "{port}", "--bind", "127.0.0.1"]
ready_timeout = 60
idle_timeout = 120.5
max_lifetime = 3600
"""))
    assert config.agentmonitor.port == 9000
    assert config.viewers["CodeDX"].ready_timeout == 60
    assert config.viewers["CodeDX"].command[0] == "python3"


@pytest.mark.parametrize("text, needle", [
    ("[agentmonitor]\nprot = 1\n", "agentmonitor.prot: unknown key"),
    ("[agentmonitor]\nport = \"8084\"\n", "agentmonitor.port: expected int, got str"),
    ("[agentmonitor]\nport = 70000\n", "agentmonitor.port: must be a port"),
    ("[scheduler]\nkind = \"slurm\"\n", "scheduler.kind: must be one of local, htcondor"),
    ("[viewers.CodeDX]\nplatform = \"vmware\"\n", "viewers.CodeDX.platform"),
    ("[viewers.CodeDX]\nready_timeout = -1\n", "viewers.CodeDX.ready_timeout: must be greater than 0"),
    ("[viewers.CodeDX]\nready_timeout = true\n", "expected int or float, got bool"),
    ("[viewers.CodeDX]\ncommand = \"python3 -m http.server\"\n", "viewers.CodeDX.command: expected list"),
    ("[viewers.CodeDX]\ncommand = [\"x\", \"{nope}\"]\n", "unknown placeholder {nope}"),
    ("[viewers.\"bad name\"]\n", "a viewer name"),
    ("[agentmonitor]\nhost = \"0.0.0.0\"\n", "token_file: required when host is not loopback"),
    ("[surprise]\n", "surprise: unknown key"),
    ("not toml [", "not valid TOML"),
])
def test_bad_files_name_file_key_and_reason(tmp_path, text, needle):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert needle in str(info.value) and path in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(str(tmp_path / "absent.toml"))
