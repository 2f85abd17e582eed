"""[mariadb] and [codedx] configuration, and how database-started clients find their config."""
from __future__ import annotations

import pytest

from swampd.cli import lookup
from swampd.config import ConfigError, parse_config


def test_sections_parse_with_defaults_and_reject_mistakes(tmp_path):
    config = parse_config({"mariadb": {"database": "viewer_store", "launch_history": True},
                           "codedx": {"verify_tls": True}}, "t.toml")
    assert config.mariadb is not None and config.mariadb.launch_history and config.mariadb.connect_timeout == 5
    assert config.codedx is not None and config.codedx.base_url == "https://{vmip}/{url_uuid}"
    assert parse_config({}, "t.toml").mariadb is None and parse_config({}, "t.toml").codedx is None
    for bad, words in (
        ({"mariadb": {"pasword_file": "x"}}, "mariadb.pasword_file: unknown key"),
        ({"mariadb": {"port": "3306"}}, "mariadb.port: expected int"),
        ({"mariadb": {"database": "x; DROP"}}, "mariadb.database"),
        ({"mariadb": {"launch_history": 1}}, "mariadb.launch_history: expected bool"),
        ({"codedx": {"viewers": ["Nope"]}}, "'Nope' is not a configured viewer"),
        ({"codedx": {"auth": "basic"}}, "codedx.auth"),
        ({"codedx": {"base_url": "ftp://{vmip}"}}, "codedx.base_url"),
        ({"codedx": {"base_url": "https://{host}/"}}, "unknown placeholder {host}"),
        ({"codedx": {"ca_bundle": str(tmp_path / "missing.pem")}}, "no such file"),
    ):
        with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace("{", r"\{")):
            parse_config(bad, "t.toml")


def test_client_config_lookup_order(tmp_path, monkeypatch):
    system = tmp_path / "etc-swampd.toml"
    monkeypatch.setattr(lookup, "SYSTEM_CONFIG", str(system))
    monkeypatch.delenv("SWAMPD_CONFIG", raising=False)
    assert lookup.client_config(None) is None  # no file anywhere: built-in defaults
    system.write_text("")
    assert lookup.client_config(None) == str(system)
    monkeypatch.setenv("SWAMPD_CONFIG", "/from/env.toml")
    assert lookup.client_config(None) == "/from/env.toml"
    assert lookup.client_config("/from/cli.toml") == "/from/cli.toml"
