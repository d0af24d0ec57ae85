"""Wire constants of PS3.8 (Upper Layer) and PS3.7 (DIMSE), kept as data in one place."""

from __future__ import annotations

import struct
from enum import IntEnum


class PDUType(IntEnum):
    """PDU types, PS3.8 9.3.1."""

    A_ASSOCIATE_RQ = 0x01
    A_ASSOCIATE_AC = 0x02
    A_ASSOCIATE_RJ = 0x03
    P_DATA_TF = 0x04
    A_RELEASE_RQ = 0x05
    A_RELEASE_RP = 0x06
    A_ABORT = 0x07


class ItemType(IntEnum):
    """Variable item and sub-item types, PS3.8 9.3.2-9.3.3 and PS3.7 Annex D."""

    APPLICATION_CONTEXT = 0x10
    PRESENTATION_CONTEXT_RQ = 0x20
    PRESENTATION_CONTEXT_AC = 0x21
    ABSTRACT_SYNTAX = 0x30
    TRANSFER_SYNTAX = 0x40
    USER_INFORMATION = 0x50
    MAXIMUM_LENGTH = 0x51
    IMPLEMENTATION_CLASS_UID = 0x52
    ASYNC_OPS_WINDOW = 0x53
    ROLE_SELECTION = 0x54
    IMPLEMENTATION_VERSION_NAME = 0x55
    SOP_CLASS_EXTENDED = 0x56
    SOP_CLASS_COMMON_EXTENDED = 0x57
    USER_IDENTITY_RQ = 0x58
    USER_IDENTITY_AC = 0x59


PDU_HEADER_LEN = 6
ITEM_HEADER_LEN = 4
PDV_HEADER_LEN = 6  # item length (4) + presentation context ID (1) + message control header (1)
ASSOCIATE_FIXED_LEN = 68  # bytes 7..74 of A-ASSOCIATE-RQ/AC after the 6-byte header

# Header layouts, big-endian (PS3.8 9.3.1, 9.3.5, 9.3.2.x, E.2); every module packs and unpacks
# headers with these objects (module-level, so a hot path pays one global lookup, no more).
PDU_HEADER = struct.Struct(">BBI")  # PDU type, reserved, PDU length
ITEM_HEADER = struct.Struct(">BBH")  # item type, reserved, item length
PDV_HEADER = struct.Struct(">IBB")  # PDV item length, presentation context ID, control header
# A P-DATA-TF header followed by the header of its first PDV (one unpack for a one-PDV PDU).
PDATA_PDV_HEADER = struct.Struct(">BBIIBB")
# A data element header in Implicit VR Little Endian (group, element, value length): the command
# set encoding (PS3.7 6.3.1), and a US value.
IMPLICIT_LE_ELEMENT_HEADER = struct.Struct("<HHI")
US_LE = struct.Struct("<H")
UL_LE = struct.Struct("<I")
TAG_LE = struct.Struct("<HH")  # an AT value: group, element (PS3.5 6.2)
# Whole Implicit VR LE elements of the command set: header and a US or UL value.
US_ELEMENT_LE = struct.Struct("<HHIH")
UL_ELEMENT_LE = struct.Struct("<HHII")
# Explicit VR Little Endian element headers (PS3.5 7.1.2): 2-byte length, or 2 reserved bytes
# and a 4-byte length for the long VRs (OB, OW, SQ, UN, UT, ...).
EXPLICIT_LE_ELEMENT_HEADER = struct.Struct("<HH2sH")
EXPLICIT_LE_LONG_ELEMENT_HEADER = struct.Struct("<HH2sHI")
# Big-endian length and value fields inside PDUs and items (PS3.8 9.3): 2-byte UID lengths,
# the protocol version, 4-byte maximum length.
U16_BE = struct.Struct(">H")
U16_PAIR_BE = struct.Struct(">HH")
U32_BE = struct.Struct(">I")

APPLICATION_CONTEXT_NAME = "1.2.840.10008.3.1.1.1"
VERIFICATION_SOP_CLASS = "1.2.840.10008.1.1"
STORAGE_SERVICE_CLASS = "1.2.840.10008.4.2"

IMPLICIT_VR_LE = "1.2.840.10008.1.2"
EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
DEFLATED_EXPLICIT_VR_LE = "1.2.840.10008.1.2.1.99"
EXPLICIT_VR_BE = "1.2.840.10008.1.2.2"
# Encapsulated (compressed) transfer syntaxes, PS3.5 Annex A.4 / PS3.6 Annex A.
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"
JPEG_LOSSLESS = "1.2.840.10008.1.2.4.57"
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"
JPEG_LS_NEAR_LOSSLESS = "1.2.840.10008.1.2.4.81"
JPEG_2000_LOSSLESS = "1.2.840.10008.1.2.4.90"
JPEG_2000 = "1.2.840.10008.1.2.4.91"
HTJ2K_LOSSLESS = "1.2.840.10008.1.2.4.201"
HTJ2K_LOSSLESS_RPCL = "1.2.840.10008.1.2.4.202"
HTJ2K = "1.2.840.10008.1.2.4.203"
RLE_LOSSLESS = "1.2.840.10008.1.2.5"
MPEG2_MPML = "1.2.840.10008.1.2.4.100"
MPEG4_HP41 = "1.2.840.10008.1.2.4.102"
HEVC_MP51 = "1.2.840.10008.1.2.4.110"

# Storage SOP classes the harness sends (PS3.4 Annex B.5).
CR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.1"
MG_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.1.2"  # Digital Mammography X-Ray, For Presentation
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
US_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.3.1"  # Ultrasound Multi-frame
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
SC_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.7"
BASIC_TEXT_SR_STORAGE = "1.2.840.10008.5.1.4.1.1.88.11"
ENCAPSULATED_PDF_STORAGE = "1.2.840.10008.5.1.4.1.1.104.1"
RT_PLAN_STORAGE = "1.2.840.10008.5.1.4.1.1.481.5"
PRIVATE_SOP_CLASS = "1.2.3.999.1"  # not registered anywhere: an unsupported abstract syntax
BOGUS_TRANSFER_SYNTAX = "1.2.3.999.2"  # likewise, an unsupported transfer syntax

# Short names a scenario file may write instead of a UID (``abstract: CT``, ``ts: IVRLE``).
SOP_CLASS_SHORT_NAMES: dict[str, str] = {
    "CT": CT_IMAGE_STORAGE,
    "MR": MR_IMAGE_STORAGE,
    "CR": CR_IMAGE_STORAGE,
    "US": US_IMAGE_STORAGE,
    "MG": MG_IMAGE_STORAGE,
    "SC": SC_IMAGE_STORAGE,
    "SR": BASIC_TEXT_SR_STORAGE,
    "PDF": ENCAPSULATED_PDF_STORAGE,
    "RTPLAN": RT_PLAN_STORAGE,
    "VERIFICATION": VERIFICATION_SOP_CLASS,
    "PRIVATE": PRIVATE_SOP_CLASS,
    "TINY": CT_IMAGE_STORAGE,
}
TRANSFER_SYNTAX_SHORT_NAMES: dict[str, str] = {
    "IVRLE": IMPLICIT_VR_LE,
    "EVRLE": EXPLICIT_VR_LE,
    "EVRBE": EXPLICIT_VR_BE,
    "DEFLATED": DEFLATED_EXPLICIT_VR_LE,
    "JPEG_BASELINE": JPEG_BASELINE,
    "JPEG_LOSSLESS": JPEG_LOSSLESS_SV1,
    "RLE": RLE_LOSSLESS,
    "J2K": JPEG_2000_LOSSLESS,
    "BOGUS": BOGUS_TRANSFER_SYNTAX,
}

# Default AE titles (PS3.8 9.3.2: up to 16 characters, any title). The reference SCP answers to
# ANY-SCP; the harness calls itself HARNESS, and each load generator its own title so that its
# traffic stands apart from conformance runs in an SCP's logs and calling-AE policies.
DEFAULT_CALLED_AE = "ANY-SCP"
DEFAULT_CALLING_AE = "HARNESS"
BENCH_CALLING_AE = "HARNESS-BENCH"
LOCUST_CALLING_AE = "HARNESS-LOCUST"
DCMTK_CALLING_AE = "STORESCU"  # what DCMTK's storescu calls itself by default

# Message Control Header bits, PS3.8 E.2.
MCH_COMMAND = 0x01
MCH_LAST = 0x02
MCH_RESERVED_MASK = 0xFC

# A-ASSOCIATE-RJ result/source/reason, PS3.8 9.3.4 Table 9-21: source -> {reason: meaning}.
RJ_RESULTS = {1: "rejected-permanent", 2: "rejected-transient"}
RJ_SOURCES = {
    1: "DICOM UL service-user",
    2: "DICOM UL service-provider (ACSE related function)",
    3: "DICOM UL service-provider (Presentation related function)",
}
RJ_REASONS: dict[int, dict[int, str]] = {
    1: {
        1: "no-reason-given",
        2: "application-context-name-not-supported",
        3: "calling-AE-title-not-recognized",
        7: "called-AE-title-not-recognized",
    },
    2: {1: "no-reason-given", 2: "protocol-version-not-supported"},
    3: {1: "temporary-congestion", 2: "local-limit-exceeded"},
}



class RejectResult(IntEnum):
    """A-ASSOCIATE-RJ Result, PS3.8 Table 9-21."""

    PERMANENT = 1
    TRANSIENT = 2


class RejectSource(IntEnum):
    """A-ASSOCIATE-RJ Source, PS3.8 Table 9-21."""

    SERVICE_USER = 1
    PROVIDER_ACSE = 2
    PROVIDER_PRESENTATION = 3


class RejectReason(IntEnum):
    """A-ASSOCIATE-RJ Reason/Diag., PS3.8 Table 9-21 (the meaning depends on the source:
    1 is no-reason-given for sources 1 and 2, temporary-congestion for source 3)."""

    NO_REASON_GIVEN = 1
    APPLICATION_CONTEXT_NOT_SUPPORTED = 2  # source 1
    CALLING_AE_NOT_RECOGNIZED = 3  # source 1
    CALLED_AE_NOT_RECOGNIZED = 7  # source 1
    PROTOCOL_VERSION_NOT_SUPPORTED = 2  # source 2 (same value as 2 of source 1)
    TEMPORARY_CONGESTION = 1  # source 3
    LOCAL_LIMIT_EXCEEDED = 2  # source 3


class AbortSource(IntEnum):
    """A-ABORT Source, PS3.8 Table 9-26."""

    SERVICE_USER = 0
    SERVICE_PROVIDER = 2


class AbortReason(IntEnum):
    """A-ABORT Reason/Diag. (source 2 only), PS3.8 Table 9-26."""

    NOT_SPECIFIED = 0
    UNRECOGNIZED_PDU = 1
    UNEXPECTED_PDU = 2
    UNRECOGNIZED_PDU_PARAMETER = 4
    UNEXPECTED_PDU_PARAMETER = 5
    INVALID_PDU_PARAMETER_VALUE = 6


class StoreStatus(IntEnum):
    """C-STORE response statuses the reference SCP sends, PS3.4 Table B.2-1 and PS3.7
    Annex C."""

    SUCCESS = 0x0000
    DUPLICATE_INVOCATION = 0x0210  # PS3.7 C.5.9
    UNRECOGNIZED_OPERATION = 0x0211  # PS3.7 C.5.23
    NO_SUCH_SOP_CLASS = 0x0122  # PS3.7 C.5.6 (Refused: SOP Class not supported)
    INVALID_SOP_INSTANCE = 0x0117  # PS3.7 C.5.12 (Invalid object instance)
    OUT_OF_RESOURCES = 0xA700  # PS3.4 B.2.3
    DATA_SET_DOES_NOT_MATCH = 0xA900  # PS3.4 B.2.3
    CANNOT_UNDERSTAND = 0xC000  # PS3.4 B.2.3 (C000-CFFF)
    CANNOT_DECODE = 0xC210  # pynetdicom's code in the Cannot understand range
    # The handler's own mistakes (pynetdicom's codes, all in Cannot understand, C000-CFFF):
    NO_STATUS_IN_DATASET = 0xC001  # a returned Dataset without (0000,0900) Status
    INVALID_HANDLER_RETURN = 0xC002  # neither an int nor a Dataset, or an illegal code
    HANDLER_EXCEPTION = 0xC211  # the handler raised
    CANCEL = 0xFE00  # PS3.7 C.5.1


# A-ABORT source/reason, PS3.8 9.3.8 Table 9-26.
ABORT_SOURCES = {0: "DICOM UL service-user", 2: "DICOM UL service-provider"}
ABORT_REASONS = {
    0: "reason-not-specified",
    1: "unrecognized-PDU",
    2: "unexpected-PDU",
    4: "unrecognized-PDU-parameter",
    5: "unexpected-PDU-parameter",
    6: "invalid-PDU-parameter-value",
}

# Presentation context results, PS3.8 9.3.3.2 Table 9-18.
PC_RESULTS = {
    0: "acceptance",
    1: "user-rejection",
    2: "no-reason (provider rejection)",
    3: "abstract-syntax-not-supported (provider rejection)",
    4: "transfer-syntaxes-not-supported (provider rejection)",
}


class CommandField(IntEnum):
    """DIMSE Command Field (0000,0100) values, PS3.7 E.1."""

    C_STORE_RQ = 0x0001
    C_STORE_RSP = 0x8001
    C_GET_RQ = 0x0010
    C_GET_RSP = 0x8010
    C_FIND_RQ = 0x0020
    C_FIND_RSP = 0x8020
    C_MOVE_RQ = 0x0021
    C_MOVE_RSP = 0x8021
    C_ECHO_RQ = 0x0030
    C_ECHO_RSP = 0x8030
    N_EVENT_REPORT_RQ = 0x0100
    N_EVENT_REPORT_RSP = 0x8100
    N_GET_RQ = 0x0110
    N_GET_RSP = 0x8110
    N_SET_RQ = 0x0120
    N_SET_RSP = 0x8120
    N_ACTION_RQ = 0x0130
    N_ACTION_RSP = 0x8130
    N_CREATE_RQ = 0x0140
    N_CREATE_RSP = 0x8140
    N_DELETE_RQ = 0x0150
    N_DELETE_RSP = 0x8150
    C_CANCEL_RQ = 0x0FFF


# Command elements (PS3.7 E.1): element numbers of group 0000, named where code reads or writes
# them (wire/dimse/elements.py's COMMAND_ELEMENTS gives every one its keyword and VR).
COMMAND_GROUP_LENGTH = 0x0000
AFFECTED_SOP_CLASS_UID = 0x0002
COMMAND_FIELD = 0x0100
MESSAGE_ID = 0x0110
MESSAGE_ID_BEING_RESPONDED_TO = 0x0120
MOVE_DESTINATION = 0x0600
PRIORITY = 0x0700
COMMAND_DATA_SET_TYPE = 0x0800
STATUS = 0x0900
OFFENDING_ELEMENT = 0x0901
ERROR_COMMENT = 0x0902
ERROR_ID = 0x0903
AFFECTED_SOP_INSTANCE_UID = 0x1000
MOVE_ORIGINATOR_AET = 0x1030
MOVE_ORIGINATOR_MESSAGE_ID = 0x1031

NO_DATA_SET = 0x0101  # Command Data Set Type (0000,0800) meaning "no data set"
PRIORITIES = {0x0000: "MEDIUM", 0x0001: "HIGH", 0x0002: "LOW"}
