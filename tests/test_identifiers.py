import pytest

from swampd.errors import Fault, SwampdError
from swampd.identifiers import check_identifier, check_viewer_name, execrunid


@pytest.mark.parametrize("good", ["p1", "9f1c2d3e-aaaa-bbbb-cccc-0123456789ab", "a.b_c-d", "x" * 128])
def test_good_identifiers(good):
    assert check_identifier("projectid", good) == good


@pytest.mark.parametrize("bad", ["", "'; rm -rf /", "../x", "a/b", "x" * 129, "-lead", "a b", "é", "a\nb",
                                 "x" * 10_000_000])
def test_hostile_identifiers_are_fault_1(bad):
    with pytest.raises(SwampdError) as info:
        check_identifier("projectid", bad)
    assert info.value.code is Fault.BAD_ARGUMENT
    assert len(info.value.message) < 300  # a 10 MB value is not echoed back


def test_wrong_type_is_fault_1():
    with pytest.raises(SwampdError) as info:
        check_identifier("projectid", 12)
    assert "string" in info.value.message


def test_viewer_must_be_configured():
    assert check_viewer_name("CodeDX", {"CodeDX"}) == "CodeDX"
    with pytest.raises(SwampdError):
        check_viewer_name("Native", {"CodeDX"})


def test_execrunid_is_swamps():
    assert execrunid("p1", "CodeDX") == "vrun_p1_CodeDX"
