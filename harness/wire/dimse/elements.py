"""The command element dictionary (PS3.7 E.1, retired ones E.2): keyword and VR of every
element of group 0000, the Command Field names, and the names findings give elements.

Element numbers the code reads or writes are named in :mod:`harness.wire.constants`; this
table keys those by the same names, so a number is written once.
"""

from __future__ import annotations

from harness.wire.constants import (
    AFFECTED_SOP_CLASS_UID,
    AFFECTED_SOP_INSTANCE_UID,
    COMMAND_DATA_SET_TYPE,
    COMMAND_FIELD,
    COMMAND_GROUP_LENGTH,
    ERROR_COMMENT,
    ERROR_ID,
    MESSAGE_ID,
    MESSAGE_ID_BEING_RESPONDED_TO,
    MOVE_DESTINATION,
    MOVE_ORIGINATOR_AET,
    MOVE_ORIGINATOR_MESSAGE_ID,
    OFFENDING_ELEMENT,
    PRIORITY,
    STATUS,
    CommandField,
)

# Element number of group 0000 -> (keyword, VR), PS3.7 E.1.
COMMAND_ELEMENTS: dict[int, tuple[str, str]] = {
    COMMAND_GROUP_LENGTH: ("CommandGroupLength", "UL"),
    AFFECTED_SOP_CLASS_UID: ("AffectedSOPClassUID", "UI"),
    0x0003: ("RequestedSOPClassUID", "UI"),
    COMMAND_FIELD: ("CommandField", "US"),
    MESSAGE_ID: ("MessageID", "US"),
    MESSAGE_ID_BEING_RESPONDED_TO: ("MessageIDBeingRespondedTo", "US"),
    MOVE_DESTINATION: ("MoveDestination", "AE"),
    PRIORITY: ("Priority", "US"),
    COMMAND_DATA_SET_TYPE: ("CommandDataSetType", "US"),
    STATUS: ("Status", "US"),
    OFFENDING_ELEMENT: ("OffendingElement", "AT"),
    ERROR_COMMENT: ("ErrorComment", "LO"),
    ERROR_ID: ("ErrorID", "US"),
    AFFECTED_SOP_INSTANCE_UID: ("AffectedSOPInstanceUID", "UI"),
    0x1001: ("RequestedSOPInstanceUID", "UI"),
    0x1002: ("EventTypeID", "US"),
    0x1005: ("AttributeIdentifierList", "AT"),
    0x1008: ("ActionTypeID", "US"),
    0x1020: ("NumberOfRemainingSuboperations", "US"),
    0x1021: ("NumberOfCompletedSuboperations", "US"),
    0x1022: ("NumberOfFailedSuboperations", "US"),
    0x1023: ("NumberOfWarningSuboperations", "US"),
    MOVE_ORIGINATOR_AET: ("MoveOriginatorApplicationEntityTitle", "AE"),
    MOVE_ORIGINATOR_MESSAGE_ID: ("MoveOriginatorMessageID", "US"),
}

# Retired command elements (PS3.7 E.2): decoded, but reported as a warning when seen.
RETIRED_COMMAND_ELEMENTS: dict[int, tuple[str, str]] = {
    0x0001: ("CommandLengthToEnd", "UL"),
    0x0010: ("CommandRecognitionCode", "SH"),
    0x0200: ("Initiator", "AE"),
    0x0300: ("Receiver", "AE"),
    0x0400: ("FindLocation", "AE"),
    0x0850: ("NumberOfMatches", "US"),
    0x0860: ("ResponseSequenceNumber", "US"),
    0x4000: ("DialogReceiver", "LT"),
    0x4010: ("TerminalType", "LT"),
    0x5010: ("MessageSetID", "SH"),
    0x5020: ("EndMessageID", "SH"),
    0x5110: ("DisplayFormat", "LT"),
    0x5120: ("PagePositionID", "LT"),
    0x5130: ("TextFormatID", "CS"),
    0x5140: ("NormalReverse", "CS"),
    0x5150: ("AddGrayScale", "CS"),
    0x5160: ("Borders", "CS"),
    0x5170: ("Copies", "IS"),
    0x5180: ("CommandMagnificationType", "CS"),
    0x5190: ("Erase", "CS"),
    0x51A0: ("Print", "CS"),
    0x51B0: ("Overlays", "US"),
}

KEYWORD_TO_ELEMENT: dict[str, int] = {kw: el for el, (kw, _) in COMMAND_ELEMENTS.items()}

COMMAND_NAMES: dict[int, str] = {cf.value: cf.name.replace("_", "-") for cf in CommandField}


def _entry(element: int) -> tuple[str, str] | None:
    return COMMAND_ELEMENTS.get(element) or RETIRED_COMMAND_ELEMENTS.get(element)


def vr_of(element: int) -> str:
    """The VR of a command element (current or retired); ``UN`` for one PS3.7 does not list."""
    entry = _entry(element)
    return entry[1] if entry else "UN"


def field_name(element: int) -> str:
    """How a finding names a command element, e.g. ``(0000,0800) CommandDataSetType``."""
    entry = _entry(element)
    name = entry[0] if entry else "unknown"
    return f"(0000,{element:04X}) {name}"


def tag_name(group: int, element: int) -> str:
    """:func:`field_name` for group 0000, the bare tag for an element of another group."""
    return field_name(element) if group == 0 else f"({group:04X},{element:04X})"
