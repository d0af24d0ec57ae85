"""Typed DIMSE messages (PS3.7 9.3): the C-STORE and C-ECHO request and response, C-CANCEL,
and :class:`DecodedCommand`, what the validating decoder saw in one command set."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from harness.wire.constants import NO_DATA_SET, VERIFICATION_SOP_CLASS, CommandField
from harness.wire.dimse.elements import COMMAND_NAMES
from harness.wire.findings import Finding


class _NoDataSet:
    """A message that never has a data set (Command Data Set Type 0101H, PS3.7 E.1)."""

    __slots__ = ()

    @property
    def has_data_set(self) -> bool:
        return False


@dataclass(slots=True)
class CStoreRQ:
    """C-STORE-RQ, PS3.7 9.3.1.1. ``command_data_set_type`` 0101H would mean no data set."""

    command_field: ClassVar[int] = CommandField.C_STORE_RQ.value
    message_id: int
    affected_sop_class_uid: str
    affected_sop_instance_uid: str
    priority: int = 0
    command_data_set_type: int = 0x0000
    move_originator_aet: str | None = None
    move_originator_message_id: int | None = None

    @property
    def has_data_set(self) -> bool:
        return self.command_data_set_type != NO_DATA_SET


@dataclass(slots=True)
class CStoreRSP(_NoDataSet):
    """C-STORE-RSP, PS3.7 9.3.1.2 (plus Annex C related fields)."""

    command_field: ClassVar[int] = CommandField.C_STORE_RSP.value
    message_id_being_responded_to: int
    status: int
    affected_sop_class_uid: str | None = None
    affected_sop_instance_uid: str | None = None
    message_id: int | None = None
    error_comment: str | None = None
    offending_element: list[int] | None = None
    error_id: int | None = None


@dataclass(slots=True)
class CEchoRQ(_NoDataSet):
    """C-ECHO-RQ, PS3.7 9.3.5.1."""

    command_field: ClassVar[int] = CommandField.C_ECHO_RQ.value
    message_id: int
    affected_sop_class_uid: str = VERIFICATION_SOP_CLASS


@dataclass(slots=True)
class CEchoRSP(_NoDataSet):
    """C-ECHO-RSP, PS3.7 9.3.5.2."""

    command_field: ClassVar[int] = CommandField.C_ECHO_RSP.value
    message_id_being_responded_to: int
    status: int
    affected_sop_class_uid: str | None = VERIFICATION_SOP_CLASS
    error_comment: str | None = None


@dataclass(slots=True)
class CCancelRQ(_NoDataSet):
    """C-CANCEL-RQ (C-CANCEL-FIND/GET/MOVE-RQ), PS3.7 9.3.2.3: Command Field 0FFFH."""

    command_field: ClassVar[int] = CommandField.C_CANCEL_RQ.value
    message_id_being_responded_to: int


Message = CStoreRQ | CStoreRSP | CEchoRQ | CEchoRSP | CCancelRQ


@dataclass(slots=True)
class DecodedCommand:
    """What :func:`decode_command` saw. ``message`` is ``None`` when the Command Field is
    unknown (or has no typed class here) or a mandatory element is missing or mistyped;
    a message can be present *and* come with findings: check :attr:`ok`."""

    elements: dict[int, object] = field(default_factory=dict)
    raw: dict[int, bytes] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)
    command_field: int | None = None
    message: Message | None = None
    findings: list[Finding] = field(default_factory=list)
    offsets: dict[int, int] = field(default_factory=dict)  # element -> offset of its tag
    foreign: dict[int, bytes] = field(default_factory=dict)  # full tag -> value, not group 0000
    explicit_vr: bool = False
    length: int = 0

    @property
    def ok(self) -> bool:
        """No error-severity finding (warnings allowed)."""
        return not any(f.severity == "error" for f in self.findings)

    @property
    def command_name(self) -> str:
        cf = self.command_field
        if cf is None:
            return "no-command-field"
        return COMMAND_NAMES.get(cf, f"unknown-0x{cf:04X}")
