"""A synchronous simulated SCU: :class:`SimulatedSCU` driven to completion call by call on
a private event loop, for synchronous code such as pytest tests (the plugin's ``scu`` and
``scu_factory`` fixtures hand these out).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from harness.wire.constants import EXPLICIT_VR_LE, IMPLICIT_VR_LE, VERIFICATION_SOP_CLASS

# Imported where used: pydicom alone costs a noticeable part of a second.
if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from harness.scu.client import SimulatedSCU
    from harness.scu.outcome import Outcome
    from harness.wire.items import PresentationContextRQ

T = TypeVar("T")


class SCUTarget(Protocol):
    """Where and as whom the SCU connects (``harness.engine.context.Target`` is one; the
    engine sits above this layer, so it is described rather than imported)."""

    host: str
    port: int
    called_aet: str
    calling_aet: str
    timeout: float
    tls: Any  # a harness.net.tls.TLSClient (the SCU uses its ``context``) or None


def default_contexts() -> list[PresentationContextRQ]:
    """One context per SOP class the dataset factory makes, plus Verification, each with
    Explicit and Implicit VR Little Endian."""
    from harness.datasets import KINDS
    from harness.wire.items import PresentationContextRQ

    classes = list(dict.fromkeys(spec.sop_class_uid for spec in KINDS.values()))
    classes.append(VERIFICATION_SOP_CLASS)
    return [PresentationContextRQ(2 * i + 1, uid, [EXPLICIT_VR_LE, IMPLICIT_VR_LE])
            for i, uid in enumerate(classes)]


class SyncSCU:
    """A :class:`SimulatedSCU` for synchronous tests: every call runs to completion on the
    SCU's private event loop. ``run(coro_fn)`` gives full access to the async API."""

    def __init__(self, target: SCUTarget, *, timeout: float | None = None) -> None:
        from harness.scu.client import SimulatedSCU

        self.target = target
        self.timeout = timeout or target.timeout
        self.loop: asyncio.AbstractEventLoop = asyncio.new_event_loop()
        self._message_ids = itertools.count(1)
        try:
            self.scu: SimulatedSCU = self.loop.run_until_complete(
                SimulatedSCU.connect(target.host, target.port, timeout=self.timeout,
                                     tls=target.tls.context if target.tls else None,
                                     server_hostname=target.tls.options.server_hostname
                                     if target.tls else None))
        except BaseException:
            self.loop.close()
            raise

    def run(self, work: Callable[[SimulatedSCU], Coroutine[Any, Any, T]]) -> T:
        """``scu.run(lambda s: s.echo(7))``: run async code against the association."""
        return self.loop.run_until_complete(work(self.scu))

    def associate(self, contexts: list[PresentationContextRQ] | None = None, *,
                  called_aet: str | None = None, calling_aet: str | None = None,
                  max_pdu: int = 16384) -> Outcome:
        rq = self.scu.build_rq(called_aet or self.target.called_aet,
                               calling_aet or self.target.calling_aet,
                               contexts=contexts or default_contexts(), max_pdu=max_pdu)
        return self.loop.run_until_complete(self.scu.associate(rq, self.timeout))

    @property
    def accepted_contexts(self) -> dict[int, tuple[str, str]]:
        """Context ID -> (abstract syntax, transfer syntax) of the accepted contexts."""
        return self.scu.requestor.accepted_contexts

    def store(self, dataset: Dataset | bytes, *, sop_class_uid: str | None = None,
              sop_instance_uid: str | None = None, message_id: int | None = None,
              timeout: float | None = None) -> Outcome:
        """C-STORE a data set (encoded in the accepted context's transfer syntax) or
        already-encoded bytes (then give both UIDs); returns the outcome (``.status``)."""
        from pydicom.dataset import Dataset

        from harness.datasets import UNCOMPRESSED_TRANSFER_SYNTAXES, encode_dataset
        from harness.scu.client import StoreRequest
        from harness.scu.outcome import Outcome

        klass = sop_class_uid or (str(dataset.SOPClassUID) if isinstance(dataset, Dataset)
                                  else "")
        instance = sop_instance_uid or (str(dataset.SOPInstanceUID)
                                        if isinstance(dataset, Dataset) else "")
        if not klass or not instance:
            raise ValueError("store(bytes) needs sop_class_uid and sop_instance_uid")
        found = self.scu.context_for(klass)
        if found is None:
            return Outcome("error", f"no accepted presentation context for {klass}")
        context_id, ts = found
        if isinstance(dataset, Dataset):
            if ts not in UNCOMPRESSED_TRANSFER_SYNTAXES:
                return Outcome("error", f"the accepted transfer syntax {ts} needs "
                               "encapsulated Pixel Data; pass encoded bytes instead")
            data = encode_dataset(dataset, ts)
        else:
            data = dataset
        request = StoreRequest(message_id or next(self._message_ids), klass, instance)
        return self.loop.run_until_complete(self.scu.store(request, data, context_id,
                                                           timeout=timeout or self.timeout))

    def echo(self, message_id: int | None = None) -> Outcome:
        return self.loop.run_until_complete(self.scu.echo(message_id or next(
            self._message_ids), timeout=self.timeout))

    def release(self) -> Outcome:
        return self.loop.run_until_complete(self.scu.release(self.timeout))

    def abort(self) -> Outcome:
        return self.scu.abort()

    def close(self) -> None:
        """Release if still associated (briefly), then close the connection and the loop."""
        if self.loop.is_closed():
            return
        req = self.scu.requestor
        try:
            if req.ac is not None and req.ended is None and not req.conn.is_closed:
                self.loop.run_until_complete(self.scu.release(min(self.timeout, 2.0)))
        except Exception:  # the test may have broken the association on purpose
            pass
        finally:
            self.scu.close()
            self.loop.run_until_complete(asyncio.sleep(0))  # let the transport finish closing
            self.loop.close()
