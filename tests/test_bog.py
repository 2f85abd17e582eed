import os
import stat

import pytest

from swampd.bog import BogError, format_bog, parse_bog, read_bog, write_new_private, write_private


def test_round_trip_in_sorted_order_without_empty_values():
    text = format_bog({"viewer": "CodeDX", "apikey": "k", "db_path": "", "url": "a=b"})
    assert text.splitlines() == ["# Bill Of Goods File: swampd", "apikey=k", "url=a=b", "viewer=CodeDX"]
    assert parse_bog(text) == {"apikey": "k", "url": "a=b", "viewer": "CodeDX"}


@pytest.mark.parametrize("value", ["two\nlines", " padded", "cr\r"])
def test_values_swamps_reader_would_corrupt_are_refused(value):
    with pytest.raises(BogError):
        format_bog({"key": value})


def test_bad_key_is_refused():
    with pytest.raises(BogError):
        format_bog({"a b": "x"})


def test_private_write_is_0600(tmp_path):
    path = tmp_path / "x.bog"
    write_private(path, format_bog({"apikey": "secret"}))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert read_bog(path)["apikey"] == "secret"


def test_a_new_private_file_is_written_in_place_0600(tmp_path):
    path = tmp_path / "x.bog"
    write_new_private(str(path), "apikey=secret\n")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and read_bog(path) == {"apikey": "secret"}
    assert os.listdir(tmp_path) == ["x.bog"]


def test_a_new_private_file_that_exists_is_replaced_whole(tmp_path):
    """A start tried again after its writer died half way: the old file is replaced atomically, private."""
    path = tmp_path / "token"
    path.write_text("half wri")
    os.chmod(path, 0o644)
    write_new_private(path, "the token\n")
    assert path.read_text() == "the token\n" and stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_new_private_file_never_follows_a_symlink(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("untouched")
    (tmp_path / "token").symlink_to(target)
    write_new_private(tmp_path / "token", "the token\n")
    assert target.read_text() == "untouched" and not (tmp_path / "token").is_symlink()


def test_garbage_line_is_an_error():
    with pytest.raises(BogError):
        parse_bog("just words\n")
