"""Every fault of the reference SCP's profiles is visible on the wire (or on disk).

Each fault runs the same scenario twice: once with the fault and once with the conformant
profile (same other settings). The fault's symptom must show in the first run and must not
show in the second, so a fault that silently stopped working, or a conformant SCP that
started to misbehave, both fail here. Scenarios are driven by our own requestor and the
wire codec, never by the SCP's code.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from _scp_support import (
    CT,
    MR,
    contexts,
    encode_dataset,
    make_ct,
    read_stored,
    run,
    running_scp,
    store_command,
    stored_files,
)

from harness.net.connection import ConnectionClosed, Received
from harness.net.requestor import PeerEnded, Requestor
from harness.scp import FAULTS, Profile, StorageSCP
from harness.wire.constants import EXPLICIT_VR_LE
from harness.wire.dimse import (
    CCancelRQ,
    DecodedCommand,
    decode_command,
    encode_command,
    encode_elements,
    value_ui,
    value_us,
)
from harness.wire.items import AsyncOpsWindow, PresentationContextRQ, RawItem
from harness.wire.pdu import (
    PDV,
    Abort,
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    PDataTF,
    RawPDU,
    ReleaseRP,
    ReleaseRQ,
    associate_rq,
)

pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR UI:UserWarning")

UID = "1.2.826.0.1.3680043.8.498.99.1"
MSG_ID = 17
PATIENT = "Wire^Test"


@dataclass
class Obs:
    """What the requestor saw, plus what the SCP left on disk."""

    answer: AssociateAC | AssociateRJ | PeerEnded | None = None
    pdus: list[Received] = field(default_factory=list)
    responses: list[tuple[int, DecodedCommand]] = field(default_factory=list)
    closed: bool = False
    files: list[Path] = field(default_factory=list)
    storage_dir: Path = Path()
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def aborts(self) -> list[Abort]:
        return [r.pdu for r in self.pdus if isinstance(r.pdu, Abort)]

    @property
    def statuses(self) -> list[int]:
        return [int(c.elements[0x0900]) for _, c in self.responses  # type: ignore[call-overload]
                if isinstance(c.elements.get(0x0900), int)]

    def first_rsp(self) -> DecodedCommand:
        assert self.responses, f"no response at all: {self}"
        return self.responses[0][1]


class Wire:
    """Our requestor plus a collector that reassembles every command the SCP sends."""

    def __init__(self, req: Requestor, obs: Obs) -> None:
        self.req = req
        self.obs = obs
        self._command: dict[int, bytes] = {}

    def send(self, pdu: Any) -> None:
        with contextlib.suppress(ConnectionClosed):
            self.req.conn.send_pdu(pdu)

    async def store(self, data: bytes, *, msg_id: int = MSG_ID, uid: str = UID,
                    sop_class: str = CT, context_id: int = 1, fragment: int = 512) -> None:
        """Command then data in ``fragment``-byte PDVs (several, so mid-data faults can act)."""
        self.send(PDataTF([PDV(context_id, 0x03, store_command(msg_id, uid, sop_class))]))
        for start in range(0, len(data), fragment):
            last = start + fragment >= len(data)
            self.send(PDataTF([PDV(context_id, 0x02 if last else 0x00,
                                   data[start:start + fragment])]))

    async def collect(self, *, until: Callable[[Obs], bool] = lambda o: False,
                      max_wait: float = 2.0, linger: float = 0.1) -> None:
        """Receive until closed; wait at most ``max_wait`` for ``until``, then ``linger``."""
        obs = self.obs
        done = until(obs)
        while not obs.closed:
            got = await self.req.recv_pdu(linger if done else max_wait)
            if isinstance(got, PeerEnded):
                obs.closed = got.kind == "closed"
                if got.kind == "timeout" or obs.closed:
                    break
                continue
            obs.pdus.append(got)
            if isinstance(got.pdu, PDataTF):
                for pdv in got.pdu.pdvs:
                    if pdv.is_command:
                        buf = self._command.get(pdv.context_id, b"") + bytes(pdv.data)
                        self._command[pdv.context_id] = buf
                        if pdv.is_last:
                            obs.responses.append((pdv.context_id, decode_command(buf)))
                            self._command[pdv.context_id] = b""
            done = done or until(obs)


def got_response(n: int = 1) -> Callable[[Obs], bool]:
    return lambda o: len(o.responses) >= n or bool(o.aborts)


def got_anything(o: Obs) -> bool:
    return bool(o.pdus)


Scenario = Callable[[Wire, StorageSCP], Awaitable[None]]


async def observe(profile: Profile, scenario: Scenario, *,
                  pcs: list[PresentationContextRQ] | None = None, max_pdu: int = 16384,
                  rq_change: Callable[[AssociateRQ], None] | None = None,
                  associate: bool = True) -> Obs:
    obs = Obs()
    async with running_scp(profile) as scp:
        obs.storage_dir = scp.storage_dir
        req = await Requestor.connect("127.0.0.1", scp.port, timeout=3.0)
        wire = Wire(req, obs)
        try:
            if associate:
                rq = associate_rq("ANY-SCP", "FAULTSCU", pcs or contexts(
                    (CT, [EXPLICIT_VR_LE]), (MR, [EXPLICIT_VR_LE])), max_pdu=max_pdu)
                if rq_change is not None:
                    rq_change(rq)
                obs.answer = await req.associate(rq, timeout=3.0)
                obs.notes["rq"] = rq
            await scenario(wire, scp)
        finally:
            req.close()
        await asyncio.sleep(0.05)  # let the SCP see the close and clean up
        obs.files = stored_files(scp.storage_dir)
        # read now: the SCP removes a storage directory it created itself when it stops
        dcm = [f for f in obs.files if f.suffix == ".dcm"]
        obs.notes["patient"] = str(read_stored(dcm[0]).PatientName) if dcm else None
    return obs


def ds_bytes(uid: str = UID, *, sop_class: str = CT, patient: str = PATIENT) -> bytes:
    return encode_dataset(make_ct(uid, sop_class=sop_class, patient=patient))


# --- scenarios -------------------------------------------------------------------------------

async def one_store(w: Wire, scp: StorageSCP) -> None:
    await w.store(ds_bytes())
    await w.collect(until=got_response(), max_wait=0.8)


async def command_only(w: Wire, scp: StorageSCP) -> None:
    w.send(PDataTF([PDV(1, 0x03, store_command(MSG_ID, UID))]))
    await w.collect(until=got_anything, max_wait=0.4)


async def store_slowly(w: Wire, scp: StorageSCP) -> None:
    data = ds_bytes()
    w.send(PDataTF([PDV(1, 0x03, store_command(MSG_ID, UID))]))
    w.send(PDataTF([PDV(1, 0x00, data[:256])]))
    await w.collect(until=got_anything, max_wait=0.4)
    w.obs.notes["before_rest"] = list(w.obs.pdus)
    if not w.obs.pdus:
        w.send(PDataTF([PDV(1, 0x02, data[256:])]))
        await w.collect(until=got_response())


async def interrupted(w: Wire, scp: StorageSCP) -> None:
    data = ds_bytes()
    w.send(PDataTF([PDV(1, 0x03, store_command(MSG_ID, UID))]))
    w.send(PDataTF([PDV(1, 0x00, data[:400])]))
    await asyncio.sleep(0.1)
    w.send(Abort(0, 0))
    await w.collect(max_wait=0.3)


async def store_then_cancel(w: Wire, scp: StorageSCP) -> None:
    await w.store(ds_bytes())
    w.send(PDataTF([PDV(1, 0x03, encode_command(CCancelRQ(MSG_ID)))]))
    await w.collect(until=lambda o: any(c.elements.get(0x0100) == 0x8001 and
                                        c.elements.get(0x1000) == UID for _, c in o.responses),
                    linger=0.15)


async def duplicate_ids(w: Wire, scp: StorageSCP) -> None:
    other = UID + ".2"
    await w.store(ds_bytes())
    await w.store(ds_bytes(other), uid=other)
    await w.collect(until=got_response(2))


async def uid_mismatch(w: Wire, scp: StorageSCP) -> None:
    await w.store(ds_bytes(UID + ".5"))
    await w.collect(until=got_response())


HOSTILE = "../../x"


async def invalid_uid(w: Wire, scp: StorageSCP) -> None:
    await w.store(ds_bytes(HOSTILE), uid=HOSTILE)
    await w.collect(until=got_response())


async def wrong_context(w: Wire, scp: StorageSCP) -> None:
    await w.store(ds_bytes(sop_class=MR), sop_class=MR, context_id=1)  # context 1 is CT
    await w.collect(until=got_response())


async def truncated(w: Wire, scp: StorageSCP) -> None:
    await w.store(ds_bytes()[:-9])
    await w.collect(until=got_response())


async def bad_command(w: Wire, scp: StorageSCP) -> None:
    command = encode_elements([(0x0100, value_us(1)), (0x0110, value_us(MSG_ID)),
                               (0x0700, value_us(0)), (0x0800, value_us(0)),
                               (0x1000, value_ui(UID))])  # no Affected SOP Class UID
    w.send(PDataTF([PDV(1, 0x03, command)]))
    w.send(PDataTF([PDV(1, 0x02, ds_bytes())]))
    await w.collect(until=got_response(), max_wait=0.5)


async def oversized(w: Wire, scp: StorageSCP) -> None:
    data = encode_dataset(make_ct(UID, patient=PATIENT, rows=128, columns=80))
    w.send(PDataTF([PDV(1, 0x03, store_command(MSG_ID, UID))]))
    w.send(PDataTF([PDV(1, 0x02, data)]))  # one PDU far over the SCP's 16384
    await w.collect(until=got_response())


async def release(w: Wire, scp: StorageSCP) -> None:
    w.send(ReleaseRQ())
    await w.collect(until=got_anything, max_wait=0.5)


async def bad_pdu(w: Wire, scp: StorageSCP) -> None:
    w.send(RawPDU(0x55, b"\x00\x00\x00\x00"))
    await w.collect(until=got_anything, max_wait=0.4)


async def say_nothing(w: Wire, scp: StorageSCP) -> None:
    await w.collect(max_wait=0.8)


async def nothing(w: Wire, scp: StorageSCP) -> None:
    return None


# --- the symptoms ----------------------------------------------------------------------------

def rsp_field(element: int) -> Callable[[Obs], Any]:
    return lambda o: o.first_rsp().elements.get(element)


def ac(o: Obs) -> AssociateAC:
    assert isinstance(o.answer, AssociateAC), o.answer
    return o.answer


def rj(o: Obs) -> tuple[int, int, int] | None:
    a = o.answer
    return (a.result, a.source, a.reason) if isinstance(a, AssociateRJ) else None


def abort_of(o: Obs) -> tuple[int, int] | None:
    a = o.answer
    if isinstance(a, PeerEnded) and isinstance(a.pdu, Abort):
        return (a.pdu.source, a.pdu.reason)
    return (o.aborts[0].source, o.aborts[0].reason) if o.aborts else None


def stored_patient(o: Obs) -> str | None:
    patient: str | None = o.notes.get("patient")
    return patient


def outside_free(o: Obs) -> bool:
    return all(f.parent == o.storage_dir for f in o.files)


@dataclass
class Case:
    scenario: Scenario
    shows: Callable[[Obs], bool]  # True when the fault's symptom is there
    overrides: dict[str, Any] = field(default_factory=dict)
    setup: dict[str, Any] = field(default_factory=dict)  # keyword arguments of observe()


def _rsp_status(o: Obs) -> int | None:
    return o.statuses[0] if o.statuses else None


CASES: dict[str, Case] = {
    "no_response": Case(one_store, lambda o: not o.responses and not o.aborts and not o.closed,
                        setup={}),
    "double_response": Case(one_store, lambda o: o.statuses == [0, 0]),
    "wrong_message_id": Case(one_store, lambda o: rsp_field(0x0120)(o) == MSG_ID + 1),
    "wrong_sop_instance": Case(one_store, lambda o: rsp_field(0x1000)(o) != UID),
    "response_other_context": Case(one_store, lambda o: o.responses[0][0] != 1),
    "ignore_peer_max_pdu": Case(one_store, lambda o: max(r.length for r in o.pdus) > 128,
                                setup={"max_pdu": 128}),
    "illegal_status": Case(one_store, lambda o: _rsp_status(o) == 0xFFFF),
    "pending_status": Case(one_store, lambda o: _rsp_status(o) == 0xFF00),
    "cancel_status": Case(store_then_cancel, lambda o: 0xFE00 in o.statuses,
                          {"delay_before_response": 0.2}),
    "abort_after_command": Case(command_only, lambda o: abort_of(o) == (2, 0)),
    "abort_during_data": Case(store_slowly, lambda o: any(
        isinstance(r.pdu, Abort) for r in o.notes["before_rest"])),
    "abort_before_response": Case(one_store, lambda o: abort_of(o) is not None
                                  and not o.responses and not o.files),
    "close_on_store": Case(one_store, lambda o: o.closed and not o.pdus),
    "accept_truncated": Case(truncated, lambda o: _rsp_status(o) == 0x0000),
    "accept_uid_mismatch": Case(uid_mismatch, lambda o: _rsp_status(o) == 0x0000),
    "accept_invalid_uid": Case(invalid_uid, lambda o: _rsp_status(o) == 0x0000 and len(
        o.files) == 1 and o.files[0].name.startswith("invalid-uid-") and outside_free(o)),
    "accept_wrong_context": Case(wrong_context, lambda o: _rsp_status(o) == 0x0000
                                 and len(o.files) == 1),
    "no_duplicate_check": Case(duplicate_ids, lambda o: o.statuses == [0, 0],
                               {"delay_before_response": 0.15}),
    "lose_every_nth": Case(one_store, lambda o: _rsp_status(o) == 0 and not o.files,
                           {"lose_every": 1}),
    "alter_stored": Case(one_store, lambda o: _rsp_status(o) == 0
                         and stored_patient(o) not in (None, PATIENT)),
    "keep_partial": Case(interrupted, lambda o: len(o.files) == 1),
    "success_before_data": Case(command_only, lambda o: _rsp_status(o) == 0x0000),
    "answer_cancel": Case(store_then_cancel, lambda o: len(o.responses) == 2,
                          {"delay_before_response": 0.1}),
    "reject_all": Case(nothing, lambda o: rj(o) == (1, 1, 1)),
    "abort_on_unknown_subitem": Case(
        nothing, lambda o: abort_of(o) is not None,
        setup={"rq_change": lambda rq: rq.user_information.sub_items.append(
            RawItem(0x5F, b"\x01\x02"))}),
    "reject_version_bits": Case(nothing, lambda o: rj(o) == (1, 2, 2),
                                setup={"rq_change": lambda rq: setattr(rq, "protocol_version",
                                                                       0x0003)}),
    "accept_bad_app_context": Case(
        nothing, lambda o: isinstance(o.answer, AssociateAC),
        setup={"rq_change": lambda rq: setattr(rq.items[0], "name", "1.2.3.4.5")}),
    "accept_even_context_id": Case(
        nothing, lambda o: isinstance(o.answer, AssociateAC),
        setup={"pcs": [PresentationContextRQ(2, CT, [EXPLICIT_VR_LE])]}),
    "wrong_ae_echo": Case(nothing, lambda o: (ac(o).called_ae_title, ac(o).calling_ae_title)
                          != ("ANY-SCP", "FAULTSCU")),
    "async_window_reply": Case(
        nothing, lambda o: ac(o).user_information.async_ops_window  # type: ignore[union-attr]
        not in (None, (1, 1)),
        setup={"rq_change": lambda rq: rq.user_information.sub_items.append(
            AsyncOpsWindow(1, 1))}),
    "ignore_release": Case(release, lambda o: not any(isinstance(r.pdu, ReleaseRP)
                                                      for r in o.pdus)),
    "no_artim": Case(say_nothing, lambda o: not o.closed, {"artim_timeout": 0.3},
                     setup={"associate": False}),
    "silent_on_bad_command": Case(bad_command, lambda o: not o.pdus and not o.closed),
    "hang_on_bad_pdu": Case(bad_pdu, lambda o: not o.pdus and not o.closed),
    "accept_oversized_pdu": Case(oversized, lambda o: _rsp_status(o) == 0x0000,
                                 {"max_pdu": 16384}),
    "error_comment_leak": Case(uid_mismatch, lambda o: str(o.storage_dir) in str(
        rsp_field(0x0902)(o))),
}


def test_every_fault_has_a_case() -> None:
    # Faults without a wire-level case here are proven through the scenarios they break
    # (tests/test_suite_conformance.py, fault map in tests/_fault_map.py).
    from _fault_map import faults_in_map

    assert set(CASES) <= set(FAULTS)
    missing = set(FAULTS) - set(CASES) - faults_in_map()
    assert not missing, f"faults nothing proves: {sorted(missing)}"


@pytest.mark.parametrize("fault", sorted(CASES))
def test_fault_is_visible(fault: str) -> None:
    case = CASES[fault]

    async def go() -> tuple[Obs, Obs]:
        faulty = await observe(Profile.with_faults(fault, **case.overrides), case.scenario,
                               **case.setup)
        control = await observe(Profile(**case.overrides), case.scenario, **case.setup)
        return faulty, control

    faulty, control = run(go(), timeout=15)
    assert case.shows(faulty), f"{fault} did not show: {faulty}"
    assert not case.shows(control), f"conformant SCP shows {fault}'s symptom: {control}"


# --- what the conformant control does, stated positively -------------------------------------

def test_conformant_controls_state_the_standard() -> None:
    """The controls above are not vacuous: the conformant answers are the standard ones."""
    async def go() -> dict[str, Obs]:
        p = Profile(max_pdu=16384, artim_timeout=0.3)
        return {
            "store": await observe(p, one_store),
            "truncated": await observe(p, truncated),
            "mismatch": await observe(p, uid_mismatch),
            "invalid": await observe(p, invalid_uid),
            "context": await observe(p, wrong_context),
            "oversized": await observe(p, oversized),
            "bad_pdu": await observe(p, bad_pdu),
            "release": await observe(p, release),
            "bad_command": await observe(p, bad_command),
            "even": await observe(p, nothing, pcs=[PresentationContextRQ(2, CT, [EXPLICIT_VR_LE])]),
            "silent": await observe(p, say_nothing, associate=False),
            "partial": await observe(p, interrupted),
        }

    o = run(go(), timeout=30)
    assert o["store"].statuses == [0] and len(o["store"].files) == 1
    assert stored_patient(o["store"]) == PATIENT
    assert 0xC000 <= o["truncated"].statuses[0] <= 0xCFFF and not o["truncated"].files
    assert o["mismatch"].statuses == [0xA900] and not o["mismatch"].files
    assert o["invalid"].statuses == [0x0117] and not o["invalid"].files
    assert o["context"].statuses == [0x0122] and not o["context"].files
    assert abort_of(o["oversized"]) == (2, 6)
    assert abort_of(o["bad_pdu"]) == (2, 1)
    assert any(isinstance(r.pdu, ReleaseRP) for r in o["release"].pdus)
    bad = o["bad_command"]
    assert (bad.statuses and 0xC000 <= bad.statuses[0] <= 0xCFFF) or abort_of(bad) is not None
    assert abort_of(o["even"]) == (2, 6)
    assert o["silent"].closed and not o["silent"].pdus
    assert o["partial"].files == []
