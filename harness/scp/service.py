"""The Storage Service Class of the reference SCP, shaped like pynetdicom's.

``StorageServiceClass(assoc)`` offers ``SCP(req, context)``, ``is_cancelled(msg_id)``,
``is_valid_status(status)``, ``validate_status(status, rsp)`` and the properties ``ae``,
``dimse``, ``statuses`` and ``uid`` with pynetdicom's meanings, changed where the standard
asks for more (see ``storage-scp-requirements.md`` 1.11): a status outside the PS3.7 Annex C
classes is never sent (0xC002 instead), a status Dataset can never overwrite Message ID Being
Responded To or the Affected SOP UIDs, and the received file is kept only on Success or
Warning, atomically.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from harness.scp.storage import IncomingFile
from harness.wire.constants import (
    COMMAND_DATA_SET_TYPE,
    COMMAND_FIELD,
    ERROR_COMMENT,
    MESSAGE_ID_BEING_RESPONDED_TO,
    NO_DATA_SET,
    OFFENDING_ELEMENT,
    STATUS,
    STORAGE_SERVICE_CLASS,
    StoreStatus,
)
from harness.wire.dimse import CStoreRSP, encode_elements, value_us
from harness.wire.status import (
    C_STORE_STATUSES,
    StatusCategory,
    c_store_legality,
    classify,
    describe,
    is_c_store_status,
)

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

LOG = logging.getLogger("harness.scp")

# Names kept for the code that imports them; the values live in wire.constants.StoreStatus.
STATUS_NO_STATUS_IN_DATASET = StoreStatus.NO_STATUS_IN_DATASET
STATUS_INVALID_HANDLER_RETURN = StoreStatus.INVALID_HANDLER_RETURN
STATUS_HANDLER_EXCEPTION = StoreStatus.HANDLER_EXCEPTION
STATUS_CANNOT_DECODE = StoreStatus.CANNOT_DECODE
STATUS_OUT_OF_RESOURCES = StoreStatus.OUT_OF_RESOURCES

# Status Dataset keywords a handler may set; the identifying fields are deliberately absent.
_COPYABLE = {"ErrorComment": "ErrorComment", "OffendingElement": "OffendingElement",
             "ErrorID": "ErrorID"}


@dataclass(slots=True, frozen=True)
class PresentationContext:
    context_id: int
    abstract_syntax: str
    transfer_syntax: str

    @property
    def as_tuple(self) -> tuple[int, str, str]:
        return (self.context_id, self.abstract_syntax, self.transfer_syntax)


@dataclass(slots=True)
class CStoreRequest:
    """The C-STORE indication as the service class sees it (pynetdicom attribute names)."""

    MessageID: int
    AffectedSOPClassUID: str
    AffectedSOPInstanceUID: str
    Priority: int = 0
    MoveOriginatorApplicationEntityTitle: str | None = None
    MoveOriginatorMessageID: int | None = None
    file: IncomingFile | None = None
    transfer_syntax: str = ""
    dataset_sop_class: str | None = None
    dataset_sop_instance: str | None = None
    # (status, error comment) decided before the handler runs
    precheck: tuple[int, str | None] | None = None

    @property
    def dataset_path(self) -> Path | None:
        return self.file.path if self.file is not None else None

    @property
    def DataSet(self) -> bytes:
        """The encoded data set (without the Part 10 header we put in front of it)."""
        if self.file is None:
            return b""
        self.file.close()
        with open(self.file.path, "rb") as fh:
            fh.seek(self.file.meta_length)
            return fh.read()


@dataclass(slots=True)
class CStoreResponse:
    MessageIDBeingRespondedTo: int
    AffectedSOPClassUID: str | None = None
    AffectedSOPInstanceUID: str | None = None
    Status: int | None = None
    ErrorComment: str | None = None
    OffendingElement: list[int] | None = None
    ErrorID: int | None = None

    def to_message(self) -> CStoreRSP:
        return CStoreRSP(
            message_id_being_responded_to=self.MessageIDBeingRespondedTo,
            status=self.Status if self.Status is not None else STATUS_INVALID_HANDLER_RETURN,
            affected_sop_class_uid=self.AffectedSOPClassUID,
            affected_sop_instance_uid=self.AffectedSOPInstanceUID,
            error_comment=self.ErrorComment,
            offending_element=self.OffendingElement,
            error_id=self.ErrorID,
        )


@dataclass(slots=True)
class StoreEvent:
    """What a store handler receives, like pynetdicom's ``Event`` for EVT_C_STORE."""

    request: CStoreRequest
    context: PresentationContext
    assoc: Any
    _dataset: Any = field(default=None, repr=False)

    @property
    def dataset_path(self) -> Path | None:
        return self.request.dataset_path

    @property
    def dataset(self) -> Dataset:
        """The received data set, decoded with pydicom on first use."""
        if self._dataset is None:
            from pydicom import dcmread

            path = self.request.dataset_path
            if path is None:
                raise ValueError("no data set was received")
            if self.request.file is not None:
                self.request.file.close()
            self._dataset = dcmread(path, force=True)
        return self._dataset  # type: ignore[no-any-return]


StoreHandler = Callable[[StoreEvent], Any]


class DimseProvider(Protocol):
    cancel_req: dict[int, Any]

    def send_msg(self, rsp: CStoreResponse, context_id: int) -> None: ...


class ServiceAssociation(Protocol):
    @property
    def ae(self) -> Any: ...

    @property
    def dimse(self) -> DimseProvider: ...

    @property
    def is_established(self) -> bool: ...


def default_store_handler(event: StoreEvent) -> int:
    """Accept everything that reached the handler: the file is then kept."""
    return StoreStatus.SUCCESS


class StorageServiceClass:
    """Storage Service Class SCP (PS3.4 Annex B) running on the harness's own network layer."""

    uid = STORAGE_SERVICE_CLASS
    statuses = C_STORE_STATUSES

    def __init__(self, assoc: ServiceAssociation) -> None:
        self.assoc = assoc

    @property
    def ae(self) -> Any:
        return self.assoc.ae

    @property
    def dimse(self) -> DimseProvider:
        return self.assoc.dimse

    def is_cancelled(self, msg_id: int) -> bool:
        """True once if a C-CANCEL-RQ for ``msg_id`` was received (consumes it)."""
        return self.dimse.cancel_req.pop(msg_id, None) is not None

    def is_valid_status(self, status: int) -> bool:
        return is_c_store_status(status)

    def validate_status(self, status: Any, rsp: CStoreResponse) -> CStoreResponse:
        """Set ``rsp.Status`` (and related fields) from a handler's return value."""
        code: int
        if _is_dataset(status):
            if "Status" not in status:
                LOG.error("store handler returned a Dataset without a Status element")
                code = STATUS_NO_STATUS_IN_DATASET
            else:
                code = _as_int(status.Status)
                for keyword, attr in _COPYABLE.items():
                    if keyword in status:
                        value = _related_value(keyword, getattr(status, keyword))
                        if value is None:
                            LOG.warning("status Dataset %s is not usable: not sent", keyword)
                        else:
                            setattr(rsp, attr, value)
                ignored = [e.keyword for e in status if e.keyword not in _COPYABLE
                           and e.keyword != "Status"]
                if ignored:
                    LOG.warning("status Dataset elements not copied to the response: %s",
                                ", ".join(ignored))
        elif isinstance(status, int) and not isinstance(status, bool):
            code = status
        else:
            LOG.error("store handler returned %r: not a status", type(status).__name__)
            code = STATUS_INVALID_HANDLER_RETURN
        if not 0 <= code <= 0xFFFF or c_store_legality(code) == "illegal":
            # Outside Annex C, or Pending/Cancel, which a C-STORE-RSP can never carry.
            LOG.error("status 0x%X is not a legal C-STORE status: sending 0xC002", code)
            code = STATUS_INVALID_HANDLER_RETURN
        elif not self.is_valid_status(code):
            LOG.warning("status 0x%04X is not a C-STORE status (PS3.4 Table B.2-1)", code)
        rsp.Status = code
        return rsp

    def SCP(self, req: CStoreRequest, context: PresentationContext) -> CStoreResponse | None:
        """Run the handler for one C-STORE, keep or drop the file, send the response."""
        # Echo only what the request carried (PS3.7 9.1.1.1.3-4: "if included ... equal").
        rsp = CStoreResponse(req.MessageID, req.AffectedSOPClassUID or None,
                             req.AffectedSOPInstanceUID or None)
        try:
            if req.precheck is not None:
                rsp.Status, rsp.ErrorComment = req.precheck
            else:
                handler: StoreHandler = getattr(self.ae, "store_handler", None) or \
                    default_store_handler
                try:
                    result = handler(StoreEvent(req, context, self.assoc))
                except Exception as exc:  # the handler is user code: never let it kill us
                    LOG.exception("store handler raised")
                    rsp.Status = STATUS_HANDLER_EXCEPTION
                    rsp.ErrorComment = error_comment(f"handler error: {type(exc).__name__}")
                else:
                    self.validate_status(result, rsp)
            if not self.assoc.is_established:
                return None  # the handler aborted or released: no response
            self._keep_or_drop(req, rsp)
            _drop_unrelated_fields(rsp)
        finally:
            if req.file is not None and req.file.final_path is None:
                req.file.discard()
        self.dimse.send_msg(rsp, context.context_id)
        return rsp

    def _keep_or_drop(self, req: CStoreRequest, rsp: CStoreResponse) -> None:
        status = rsp.Status if rsp.Status is not None else STATUS_INVALID_HANDLER_RETURN
        if req.file is None or classify(status) not in (StatusCategory.SUCCESS,
                                                         StatusCategory.WARNING):
            return
        uid = req.dataset_sop_instance or req.AffectedSOPInstanceUID
        policy = getattr(self.ae, "duplicate_policy", "overwrite")
        try:
            kept = req.file.commit(uid, overwrite=policy != "keep-first")
        except OSError as exc:
            rsp.Status = STATUS_OUT_OF_RESOURCES
            rsp.ErrorComment = error_comment(f"cannot store: {exc.strerror or 'I/O error'}")
            return
        if kept is None and policy == "keep-first":
            LOG.info("instance %s already stored: first copy kept", uid)
        hook = getattr(self.ae, "after_commit", None)
        if kept is not None and hook is not None:
            hook(req)


def _drop_unrelated_fields(rsp: CStoreResponse) -> None:
    """Error Comment / Offending Element only where PS3.7 Annex C lists them for the status."""
    related = describe(rsp.Status if rsp.Status is not None else 0).related_fields
    if ERROR_COMMENT not in related:
        rsp.ErrorComment = None
    if OFFENDING_ELEMENT not in related:
        rsp.OffendingElement = None


def _is_dataset(value: Any) -> bool:
    return type(value).__name__ in ("Dataset", "FileDataset") and hasattr(value, "__contains__")


def _related_value(keyword: str, value: Any) -> Any:
    """A status Dataset's related field in the form the encoder takes, or None if unusable."""
    try:
        if keyword == "OffendingElement":
            # pydicom gives a MultiValue (not a list) for several tags, an int for one.
            items = list(value) if isinstance(value, Sequence) and not isinstance(
                value, str | bytes) else [value]
            tags = [int(v) for v in items]
            return tags if all(0 <= t <= 0xFFFFFFFF for t in tags) else None
        if keyword == "ErrorID":
            number = int(value)
            return number if 0 <= number <= 0xFFFF else None
        return error_comment(str(value))
    except (TypeError, ValueError):
        return None


def _as_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return STATUS_INVALID_HANDLER_RETURN


def error_comment(text: str) -> str:
    """``text`` as an Error Comment: LO, at most 64 characters, no backslash (PS3.5 6.2)."""
    return text.replace("\\", "/")[:64]


def generic_response(command_field: int, msg_id: int, status: int) -> bytes:
    """A response command set of only Command Field, Message ID Being Responded To, Command
    Data Set Type and Status: for a request the SCP does not perform (PS3.7 C.5.23), and the
    answer_cancel fault."""
    return encode_elements([
        (COMMAND_FIELD, value_us(command_field)),
        (MESSAGE_ID_BEING_RESPONDED_TO, value_us(msg_id)),
        (COMMAND_DATA_SET_TYPE, value_us(NO_DATA_SET)),
        (STATUS, value_us(status)),
    ])
