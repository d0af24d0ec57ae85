"""DIMSE command sets (PS3.7 6.3, 9.3, Annex E): typed messages, a fast codec, a raw encoder.

Command sets are always Implicit VR Little Endian (PS3.7 6.3.1). Three paths:

- fast: :func:`encode_command` builds a typed message's bytes with ``struct`` templates and
  :func:`decode_command` parses a clean C-STORE-RQ in one step; :func:`read_store_rsp` takes
  Status and Message ID Being Responded To out of a C-STORE-RSP (:mod:`.fast`);
- validating: :func:`decode_command` never raises and reports every deviation as a
  :class:`~harness.wire.findings.Finding` (:mod:`.decode`, the rules in :mod:`.rules`);
- raw: :func:`encode_elements` emits any element list exactly as asked (wrong group length,
  missing or foreign elements, wrong lengths, Explicit VR by mistake) for fault injection
  (:mod:`.encode`, values from :mod:`.values`).

The element dictionary is :mod:`.elements`, the message classes :mod:`.messages`, the one-line
summary :mod:`.summary`. Import from this package; the modules are its layout.
"""

from harness.wire.dimse.decode import decode_command
from harness.wire.dimse.elements import (
    COMMAND_ELEMENTS,
    COMMAND_NAMES,
    KEYWORD_TO_ELEMENT,
    RETIRED_COMMAND_ELEMENTS,
)
from harness.wire.dimse.encode import encode_command, encode_elements, message_elements
from harness.wire.dimse.fast import read_store_rsp, read_store_rsp_pdu
from harness.wire.dimse.messages import (
    CCancelRQ,
    CEchoRQ,
    CEchoRSP,
    CStoreRQ,
    CStoreRSP,
    DecodedCommand,
    Message,
)
from harness.wire.dimse.summary import summarize
from harness.wire.dimse.values import (
    encode_value,
    value_ae,
    value_at,
    value_lo,
    value_str,
    value_ui,
    value_ul,
    value_us,
)

__all__ = [
    "COMMAND_ELEMENTS",
    "COMMAND_NAMES",
    "KEYWORD_TO_ELEMENT",
    "RETIRED_COMMAND_ELEMENTS",
    "CCancelRQ",
    "CEchoRQ",
    "CEchoRSP",
    "CStoreRQ",
    "CStoreRSP",
    "DecodedCommand",
    "Message",
    "decode_command",
    "encode_command",
    "encode_elements",
    "encode_value",
    "message_elements",
    "read_store_rsp",
    "read_store_rsp_pdu",
    "summarize",
    "value_ae",
    "value_at",
    "value_lo",
    "value_str",
    "value_ui",
    "value_ul",
    "value_us",
]
