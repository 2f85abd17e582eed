"""``[tools.NAME]``: the assessment tools ``swampd assess --tool NAME`` can name, checked like every table."""
from __future__ import annotations

from pathlib import Path

import pytest

from swampd.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "swampd.toml"
    path.write_text(text)
    return str(path)


def test_the_defaults_and_a_file_without_tools_have_cppcheck(tmp_path: Path) -> None:
    for config in (load_config(None), load_config(write(tmp_path, "[scheduler]\nkind = \"local\"\n"))):
        tool = config.tools["cppcheck"]
        assert tool.command[:3] == ("{python}", "-m", "swampd.tools.cppcheck")
        assert tool.swamp_name == "cppcheck" and tool.package_types == ("C/C++",) and tool.run_timeout == 3600
    assert load_config(str(ROOT / "etc" / "swampd.toml")).tools == load_config(None).tools  # the example lists them


def test_a_full_tool_table(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, """
[tools.flaw]
command = ["/usr/local/bin/flaw-run", "{in_dir}", "{out_dir}", "--work", "{sandbox}/w"]
tool_name = "Flaw Finder"
version = "2.0.1"
package_types = ["C/C++", "Python3"]
run_timeout = 90
runsh = "/opt/flaw/run.sh"
tool_path = "/swamp/store/SCATools/flaw-2.0.1"
max_concurrent = 2
concurrency_limits = "FLAWLICENSE"
"""))
    assert set(config.tools) == {"flaw"}  # a [tools] table replaces the defaults
    tool = config.tools["flaw"]
    assert tool.command[0] == "/usr/local/bin/flaw-run" and tool.swamp_name == "Flaw Finder"
    assert (tool.version, tool.package_types, tool.run_timeout) == ("2.0.1", ("C/C++", "Python3"), 90)
    assert (tool.runsh, tool.tool_path, tool.max_concurrent, tool.concurrency_limits) == (
        "/opt/flaw/run.sh", "/swamp/store/SCATools/flaw-2.0.1", 2, "FLAWLICENSE")


@pytest.mark.parametrize("text, needle", [
    ("[tools.cppcheck]\ncomand = [\"x\"]\n", "tools.cppcheck.comand: unknown key"),
    ("[tools.cppcheck]\ncommand = \"cppcheck --xml\"\n", "tools.cppcheck.command: expected list"),
    ("[tools.cppcheck]\ncommand = [\"x\", \"{port}\"]\n", "unknown placeholder {port}"),
    ("[tools.cppcheck]\ncommand = [\"x\", \"a\\nb\"]\n", "must not hold line breaks"),
    ("[tools.cppcheck]\ncommand = []\n", "non-empty list"),
    ("[tools.cppcheck]\ntool_name = \"x\"\n", "tools.cppcheck: needs a command"),
    ("[tools.cppcheck]\ncommand = [\"x\"]\nrun_timeout = 0\n", "run_timeout: must be greater than 0"),
    ("[tools.cppcheck]\ncommand = [\"x\"]\nrunsh = \"run.sh\"\n", "runsh: must be an absolute path"),
    ("[tools.cppcheck]\ncommand = [\"x\"]\nmax_concurrent = -1\n", "max_concurrent: must not be negative"),
    ("[tools.cppcheck]\ncommand = [\"x\"]\ntool_name = \"a\\u0007b\"\n", "tool_name: must be printable text"),
    ("[tools.cppcheck]\ncommand = [\"x\"]\nversion = \" 1.0\"\n", "must not start or end with white space"),
    ("[tools.cppcheck]\ncommand = [\"x\"]\nconcurrency_limits = \"A B\"\n", "concurrency limit name"),
    ("[tools.cppcheck]\ncommand = [\"x\"]\npackage_types = [\"\"]\n", "package_types: must be a list of non-empty"),
    ("[tools.\"bad name\"]\ncommand = [\"x\"]\n", "a tool name is a letter"),
    ("tools = 3\n", "tools: must hold [tools.NAME] tables"),
])
def test_bad_tool_tables_name_file_key_and_reason(tmp_path: Path, text: str, needle: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert needle in str(info.value) and path in str(info.value)
