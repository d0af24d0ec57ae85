"""Behaviour profiles of the reference SCP: YAML loading and the errors a user sees.

Every error must say which file, which field, and (for YAML syntax errors) which line, so a
user can fix a profile without reading the harness's source.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.scp.profile import FAULTS, Profile, ProfileError, StatusRule

FULL = """\
# every field, as a user would write it
ae_title: STORE-SCP
require_called_aet: true
calling_aet_allow: [MODALITY1, MODALITY2]
max_associations: 4
max-pdu: 0x8000
artim_timeout: 2.5
idle_timeout: 60
async_window: [2, 3]
sop_classes: ["1.2.840.10008.5.1.4.1.1.2"]
transfer_syntaxes: ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"]
accept_any_abstract_syntax: false
accept_any_ae: true
duplicate_sop_instance: keep-first
fsync: true
status_rules:
  - {status: "0xA700", nth: 3, error_comment: disk full}
  - status: 0xB000
    sop_class: "1.2.840.10008.5.1.4.1.1.2"
    every: 2
  - {status: 49152, attribute: PatientID, value: "BAD"}
delay_before_response: 0.1
delay_between_pdus: 0
lose_every: 5
faults: [no_response, illegal_status]
"""


def write(tmp_path: Path, text: str, name: str = "scp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_full_profile_loads(tmp_path: Path) -> None:
    p = Profile.load(write(tmp_path, FULL))
    assert p.ae_title == "STORE-SCP"
    assert p.require_called_aet is True
    assert p.calling_aet_allow == ["MODALITY1", "MODALITY2"]
    assert p.max_associations == 4
    assert p.max_pdu == 0x8000
    assert p.artim_timeout == 2.5
    assert p.idle_timeout == 60
    assert p.async_window == (2, 3)
    assert p.sop_classes == ["1.2.840.10008.5.1.4.1.1.2"]
    assert p.transfer_syntaxes == ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"]
    assert p.duplicate_sop_instance == "keep-first"
    assert p.fsync is True
    assert p.status_rules == [
        StatusRule(0xA700, nth=3, error_comment="disk full"),
        StatusRule(0xB000, sop_class="1.2.840.10008.5.1.4.1.1.2", every=2),
        StatusRule(0xC000, attribute="PatientID", value="BAD"),
    ]
    assert p.delay_before_response == 0.1
    assert p.lose_every == 5
    assert p.faults == {"no_response", "illegal_status"}
    assert p.has("no_response") and not p.has("double_response")


@pytest.mark.parametrize("text", ["", "# nothing\n", "~\n"])
def test_empty_profile_is_conformant_default(tmp_path: Path, text: str) -> None:
    p = Profile.load(write(tmp_path, text))
    assert p == Profile()
    assert p.faults == set() and p.sop_classes is None and p.async_window == (1, 1)


def test_single_fault_as_a_string(tmp_path: Path) -> None:
    assert Profile.load(write(tmp_path, "faults: reject_all\n")).faults == {"reject_all"}


def test_round_trip_through_mapping(tmp_path: Path) -> None:
    p = Profile.load(write(tmp_path, FULL))
    assert Profile.from_mapping(p.to_mapping()) == p


@settings(max_examples=40, deadline=None)
@given(
    faults=st.sets(st.sampled_from(sorted(FAULTS))),
    max_pdu=st.integers(0, 1 << 24),
    window=st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)),
    artim=st.floats(0, 1e4, allow_nan=False),
    allow=st.lists(st.text("ABCXYZ-0123", min_size=1, max_size=16), max_size=3),
)
def test_round_trip_property(faults: set[str], max_pdu: int, window: tuple[int, int],
                             artim: float, allow: list[str]) -> None:
    p = Profile(faults=faults, max_pdu=max_pdu, async_window=window, artim_timeout=artim,
                calling_aet_allow=allow)
    assert Profile.from_mapping(p.to_mapping(), "mem") == p


# --- errors: file, line, field -----------------------------------------------------------------

def load_error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ProfileError) as info:
        Profile.load(path)
    message = str(info.value)
    assert str(path) in message, message
    return message


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    message = load_error(tmp_path, "ae_title: SCP\nmax_pdu: 1000\nfaults: [no_response\n"
                                   "fsync: false\n")
    assert "line " in message
    line = int(message.split("line ", 1)[1].split()[0].rstrip(":"))
    assert 3 <= line <= 5, message


def test_yaml_tab_indent_error_names_line(tmp_path: Path) -> None:
    message = load_error(tmp_path, "ae_title: SCP\nstatus_rules:\n\t- status: 0\n")
    assert "line 3" in message, message


@pytest.mark.parametrize(("text", "field"), [
    ("ae_titel: SCP\n", "ae_titel"),
    ("faults: [no_such_fault]\n", "faults"),
    ("faults: [no_response, 12]\n", "faults"),
    ("max_pdu: big\n", "max_pdu"),
    ("max_pdu: true\n", "max_pdu"),
    ("max_pdu: 1.5\n", "max_pdu"),
    ("max_pdu: -1\n", "max_pdu"),
    ("max_associations: [1]\n", "max_associations"),
    ("lose_every: x\n", "lose_every"),
    ("artim_timeout: -1\n", "artim_timeout"),
    ("artim_timeout: soon\n", "artim_timeout"),
    ("idle_timeout: later\n", "idle_timeout"),
    ("delay_before_response: true\n", "delay_before_response"),
    ("async_window: 1\n", "async_window"),
    ("async_window: [1, 2, 3]\n", "async_window"),
    ("async_window: [a, 1]\n", "async_window"),
    ("duplicate_sop_instance: newest\n", "duplicate_sop_instance"),
    ("status_rules: [{nth: 1}]\n", "status_rules[0]"),
    ("status_rules: [{status: 0}, {status: 0, colour: red}]\n", "status_rules[1]"),
    ("status_rules: [{status: success}]\n", "status_rules[0]"),
    ("status_rules: [7]\n", "status_rules[0]"),
    ("sop_classes: 1.2.840.10008.5.1.4.1.1.2\n", "sop_classes"),
    ("transfer_syntaxes: [1, 2]\n", "transfer_syntaxes"),
    ("calling_aet_allow: MODALITY\n", "calling_aet_allow"),
    ("require_called_aet: yes please\n", "require_called_aet"),
    ("fsync: 1\n", "fsync"),
    ("ae_title: [A]\n", "ae_title"),
])
def test_field_errors_name_file_and_field(tmp_path: Path, text: str, field: str) -> None:
    message = load_error(tmp_path, text)
    assert field in message, message


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    assert "mapping" in load_error(tmp_path, text)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ProfileError, match=r"absent\.yaml"):
        Profile.load(path)


def test_profile_error_is_a_value_error() -> None:
    assert issubclass(ProfileError, ValueError)


def test_with_faults_checks_names() -> None:
    p = Profile.with_faults("no_response", "keep_partial", max_pdu=4096)
    assert p.faults == {"no_response", "keep_partial"} and p.max_pdu == 4096
    with pytest.raises(ProfileError, match="not_a_fault"):
        Profile.with_faults("not_a_fault")


def test_every_fault_is_documented() -> None:
    assert FAULTS
    for name, text in FAULTS.items():
        assert name.isidentifier() and name == name.lower()
        assert len(text) > 10


# --- status rules -------------------------------------------------------------------------------

def no_attr(keyword: str) -> Any:
    raise AssertionError("attribute read without an attribute rule")


@pytest.mark.parametrize(("rule", "sop_class", "count", "expected"), [
    (StatusRule(0xA700), "1.2", 1, True),
    (StatusRule(0xA700, sop_class="1.2"), "1.2", 1, True),
    (StatusRule(0xA700, sop_class="1.2"), "1.3", 1, False),
    (StatusRule(0xA700, nth=3), "1.2", 3, True),
    (StatusRule(0xA700, nth=3), "1.2", 4, False),
    (StatusRule(0xA700, every=2), "1.2", 4, True),
    (StatusRule(0xA700, every=2), "1.2", 5, False),
])
def test_status_rule_matches(rule: StatusRule, sop_class: str, count: int,
                             expected: bool) -> None:
    assert rule.matches(sop_class, count, no_attr) is expected


def test_status_rule_attribute() -> None:
    rule = StatusRule(0xC000, attribute="PatientID", value="BAD")
    assert rule.matches("1.2", 1, lambda kw: "BAD" if kw == "PatientID" else None)
    assert not rule.matches("1.2", 1, lambda kw: "GOOD")
    assert not rule.matches("1.2", 1, lambda kw: None)
