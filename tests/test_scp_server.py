"""The reference SCP on the wire, driven by our own requestor: conformant defaults.

Association policy (limits, AE titles, SOP classes, transfer syntaxes, asynchronous operations
window), timers (ARTIM, idle), maximum PDU length both ways, the C-STORE checks of PS3.7
9.1.1 / 9.3.1 (duplicate Message ID, unknown command, undecodable data set, UID mismatch,
wrong presentation context, invalid UID, missing command elements), and what lands on disk.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from _scp_support import (
    CT,
    MR,
    VERIFICATION,
    associate,
    association,
    contexts,
    echo,
    encode_dataset,
    make_ct,
    read_stored,
    run,
    running_scp,
    status_of,
    store,
    store_command,
    stored_files,
)

from harness.net.connection import ConnectionClosed, PeerTimeout
from harness.net.requestor import DimseMessage, PeerEnded, Requestor, open_connection
from harness.scp import Profile
from harness.scp.negotiation import storage_sop_classes
from harness.scp.storage import leftover_parts
from harness.wire.constants import (
    DEFLATED_EXPLICIT_VR_LE,
    EXPLICIT_VR_BE,
    EXPLICIT_VR_LE,
    IMPLICIT_VR_LE,
)
from harness.wire.dimse import encode_elements, value_ui, value_us
from harness.wire.items import AsyncOpsWindow
from harness.wire.pdu import PDV, Abort, AssociateAC, AssociateRJ, PDataTF, ReleaseRP

pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR UI:UserWarning",
                                        "ignore:The value length:UserWarning")

JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
FIND = "1.2.840.10008.5.1.4.1.2.1.1"  # Patient Root Q/R FIND: not storage


def uid(n: int) -> str:
    return f"1.2.826.0.1.3680043.8.498.77.{n}"


def only_files(directory: Path) -> list[str]:
    return [p.name for p in stored_files(directory)]


async def expect_nothing_left(directory: Path) -> None:
    # The SCP discards files on the loop that noticed the end; give it a turn.
    for _ in range(50):
        if not stored_files(directory):
            return
        await asyncio.sleep(0.02)
    assert stored_files(directory) == []


# --- association policy --------------------------------------------------------------------

def test_store_round_trip_and_part10_meta() -> None:
    async def go() -> None:
        async with running_scp() as scp, association(scp.port, calling="MODALITY7") as req:
            ds = make_ct(uid(1))
            data = encode_dataset(ds)
            got = await store(req, data, uid(1), msg_id=11)
            assert status_of(got) == 0x0000
            assert isinstance(got, DimseMessage)
            el = got.command.elements
            assert (el[0x0100], el[0x0120], el[0x0002], el[0x1000]) == (0x8001, 11, CT, uid(1))
            assert got.context_id == 1
            assert got.command.ok, got.command.findings
            assert isinstance(await req.release(), ReleaseRP)
            path = scp.storage_dir / f"{uid(1)}.dcm"
            assert only_files(scp.storage_dir) == [path.name]
            raw = path.read_bytes()
            assert raw[128:132] == b"DICM" and raw.endswith(data)
            stored = read_stored(path)
            meta = stored.file_meta
            assert meta.TransferSyntaxUID == EXPLICIT_VR_LE
            assert meta.MediaStorageSOPClassUID == CT
            assert meta.MediaStorageSOPInstanceUID == uid(1)
            assert str(meta.SourceApplicationEntityTitle).strip() == "MODALITY7"
            assert meta.FileMetaInformationVersion == b"\x00\x01"
            assert meta.ImplementationClassUID
            assert stored.PatientName == ds.PatientName
            [rec] = scp.records
            assert (rec.message_id, rec.status, rec.path) == (11, 0, path)
    run(go())


def test_echo() -> None:
    async def go() -> None:
        async with running_scp() as scp, association(
                scp.port, contexts((VERIFICATION, [IMPLICIT_VR_LE]))) as req:
            got = await echo(req, msg_id=5)
            assert status_of(got) == 0
            assert isinstance(got, DimseMessage)
            assert (got.command.elements[0x0100], got.command.elements[0x0120]) == (0x8030, 5)
    run(go())


def test_eight_concurrent_associations() -> None:
    per = 4

    async def one(port: int, n: int) -> list[int]:
        async with association(port, calling=f"SCU{n}") as req:
            statuses = []
            for i in range(per):
                u = uid(1000 + n * 10 + i)
                statuses.append(status_of(await store(req, encode_dataset(make_ct(u)), u,
                                                       msg_id=i + 1)))
            assert isinstance(await req.release(), ReleaseRP)
            return statuses

    async def go() -> None:
        async with running_scp() as scp:
            results = await asyncio.gather(*(one(scp.port, n) for n in range(8)))
            assert results == [[0] * per] * 8
            assert len(only_files(scp.storage_dir)) == 8 * per
            assert len({r.assoc for r in scp.records}) == 8
    run(go())


def test_kept_records_are_bounded_and_every_store_is_counted() -> None:
    """``serve`` keeps only the latest records (memory must not grow with every store)."""
    async def go() -> None:
        async with running_scp(keep_records=2) as scp, association(scp.port) as req:
            for i in range(1, 6):
                got = await store(req, encode_dataset(make_ct(uid(500 + i))), uid(500 + i),
                                  msg_id=i)
                assert status_of(got) == 0
            assert isinstance(await req.release(), ReleaseRP)
            assert scp.records_total == 5
            # at most twice the kept number, the latest ones
            assert [r.message_id for r in scp.records] == [4, 5]
            assert len(only_files(scp.storage_dir)) == 5
    run(go())


def test_max_associations_rejects_transient_local_limit() -> None:
    async def go() -> None:
        async with running_scp(Profile(max_associations=2)) as scp:
            first = [await associate(scp.port) for _ in range(2)]
            assert all(isinstance(a, AssociateAC) for _, a in first)
            req3, third = await associate(scp.port)
            assert isinstance(third, AssociateRJ)
            assert (third.result, third.source, third.reason) == (2, 3, 2)
            req3.close()
            # once one ends, there is room again
            assert isinstance(await first[0][0].release(), ReleaseRP)
            for _ in range(50):
                if scp.server.active < 2:
                    break
                await asyncio.sleep(0.02)
            req4, fourth = await associate(scp.port)
            assert isinstance(fourth, AssociateAC)
            for r in (first[1][0], req4):
                r.close()
    run(go())


@pytest.mark.parametrize(("profile", "calling", "called", "expected"), [
    (Profile(calling_aet_allow=["GOOD"]), "BAD", "ANY-SCP", (1, 1, 3)),
    (Profile(calling_aet_allow=["GOOD"]), "GOOD", "ANY-SCP", None),
    (Profile(ae_title="SCP1", require_called_aet=True), "X", "OTHER", (1, 1, 7)),
    (Profile(ae_title="SCP1", require_called_aet=True), "X", "SCP1", None),
    (Profile(ae_title="SCP1"), "X", "OTHER", None),  # not required: any called AE
])
def test_ae_title_policy(profile: Profile, calling: str, called: str,
                         expected: tuple[int, int, int] | None) -> None:
    async def go() -> None:
        async with running_scp(profile) as scp:
            req, answer = await associate(scp.port, calling=calling, called=called)
            req.close()
            if expected is None:
                assert isinstance(answer, AssociateAC)
            else:
                assert isinstance(answer, AssociateRJ)
                assert (answer.result, answer.source, answer.reason) == expected
    run(go())


def accepted(answer: Any) -> dict[int, tuple[int, str]]:
    assert isinstance(answer, AssociateAC), answer
    return {pc.context_id: (pc.result, str(pc.transfer_syntax))
            for pc in answer.presentation_contexts}


def test_every_storage_class_is_accepted_by_default() -> None:
    classes = sorted(storage_sop_classes())
    assert len(classes) > 100 and CT in classes and MR in classes

    async def go() -> None:
        async with running_scp() as scp:
            for start in range(0, len(classes), 120):
                chunk = classes[start:start + 120]
                req, answer = await associate(
                    scp.port, contexts(*((c, [IMPLICIT_VR_LE]) for c in chunk)))
                req.close()
                results = accepted(answer)
                assert len(results) == len(chunk)
                assert all(r == (0, IMPLICIT_VR_LE) for r in results.values()), results
    run(go())


def test_sop_class_policy() -> None:
    async def go() -> None:
        async with running_scp() as scp:
            req, answer = await associate(scp.port, contexts(
                (CT, [EXPLICIT_VR_LE]), (FIND, [EXPLICIT_VR_LE]), (VERIFICATION, [IMPLICIT_VR_LE])))
            req.close()
            assert accepted(answer) == {1: (0, EXPLICIT_VR_LE), 3: (3, EXPLICIT_VR_LE),
                                        5: (0, IMPLICIT_VR_LE)}
        async with running_scp(Profile(sop_classes=[CT])) as scp:
            req, answer = await associate(scp.port, contexts((CT, [EXPLICIT_VR_LE]),
                                                             (MR, [EXPLICIT_VR_LE])))
            req.close()
            assert [r for r, _ in accepted(answer).values()] == [0, 3]
    run(go())


@pytest.mark.parametrize("ts", [IMPLICIT_VR_LE, EXPLICIT_VR_LE, EXPLICIT_VR_BE,
                                DEFLATED_EXPLICIT_VR_LE, JPEG_BASELINE,
                                "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.90",
                                "1.2.840.10008.1.2.5"])
def test_each_transfer_syntax_is_accepted(ts: str) -> None:
    async def go() -> None:
        async with running_scp() as scp:
            req, answer = await associate(scp.port, contexts((CT, [ts])))
            req.close()
            assert accepted(answer) == {1: (0, ts)}
    run(go())


def test_transfer_syntax_choice_and_refusal() -> None:
    async def go() -> None:
        async with running_scp() as scp:
            req, answer = await associate(scp.port, contexts(
                (CT, [IMPLICIT_VR_LE, EXPLICIT_VR_LE]), (MR, ["1.2.3.4.5"])))
            req.close()
            assert accepted(answer) == {1: (0, EXPLICIT_VR_LE), 3: (4, "1.2.3.4.5")}
        async with running_scp(Profile(transfer_syntaxes=[IMPLICIT_VR_LE])) as scp:
            req, answer = await associate(scp.port, contexts(
                (CT, [EXPLICIT_VR_LE]), (MR, [EXPLICIT_VR_LE, IMPLICIT_VR_LE])))
            req.close()
            assert accepted(answer) == {1: (4, EXPLICIT_VR_LE), 3: (0, IMPLICIT_VR_LE)}
    run(go())


@pytest.mark.parametrize(("ours", "proposed", "reply"), [
    ((1, 1), None, None),
    ((1, 1), (5, 5), None),  # default synchronous: no 53H in the AC
    ((3, 3), (5, 5), (3, 3)),
    ((3, 3), (2, 8), (2, 3)),
    ((3, 3), (0, 0), (3, 3)),
    ((0, 4), (6, 0), (6, 4)),
    ((3, 3), None, None),  # never reply to an item that was not proposed
])
def test_async_operations_window(ours: tuple[int, int], proposed: tuple[int, int] | None,
                                 reply: tuple[int, int] | None) -> None:
    async def go() -> None:
        async with running_scp(Profile(async_window=ours)) as scp:
            extra = [AsyncOpsWindow(*proposed)] if proposed else None
            req, answer = await associate(scp.port, extra_user_items=extra)
            req.close()
            assert isinstance(answer, AssociateAC)
            assert answer.user_information is not None
            assert answer.user_information.async_ops_window == reply
    run(go())


# --- timers ------------------------------------------------------------------------------------

def test_artim_closes_a_silent_connection_without_any_pdu() -> None:
    async def go() -> None:
        async with running_scp(Profile(artim_timeout=0.3)) as scp:
            conn, stream = await open_connection("127.0.0.1", scp.port, timeout=2)
            started = time.monotonic()
            with pytest.raises(ConnectionClosed):
                await stream.get(3.0)
            elapsed = time.monotonic() - started
            assert 0.25 <= elapsed < 2.5, elapsed
            assert stream.pending() == 0
            conn.close()
    run(go())


def test_idle_timeout_aborts_an_established_association() -> None:
    async def go() -> None:
        async with running_scp(Profile(idle_timeout=0.3)) as scp, association(scp.port) as req:
            got = await req.recv_pdu(3.0)
            assert not isinstance(got, PeerEnded), got
            assert isinstance(got.pdu, Abort) and got.pdu.source == 2
            assert (await req.recv_pdu(2.0)).kind == "closed"  # type: ignore[union-attr]
    run(go())


def test_idle_timeout_counts_from_the_last_pdu() -> None:
    async def go() -> None:
        async with running_scp(Profile(idle_timeout=0.4)) as scp, association(
                scp.port, contexts((VERIFICATION, [IMPLICIT_VR_LE]))) as req:
            started = time.monotonic()
            for n in range(6):  # 0.9 s of traffic, never 0.4 s apart
                assert status_of(await echo(req, msg_id=n + 1)) == 0
                await asyncio.sleep(0.15)
            quiet = time.monotonic()
            got = await req.recv_pdu(3.0)
            assert not isinstance(got, PeerEnded) and isinstance(got.pdu, Abort), got
            now = time.monotonic()
            assert now - started > 0.9 and 0.2 <= now - quiet < 2.0, (now - started, now - quiet)
    run(go())


# --- maximum PDU length ---------------------------------------------------------------------

@pytest.mark.parametrize("size", [16384 + 1, 40000, 3 << 20])
def test_pdata_over_our_maximum_is_aborted(size: int) -> None:
    async def go() -> None:
        async with running_scp(Profile(max_pdu=16384)) as scp, association(scp.port) as req:
            assert req.peer_max_pdu == 16384
            req.conn.send_pdu(PDataTF([PDV(1, 0x03, store_command(1, uid(2)))]))
            # item = 4 + 2 + data: a PDU body of exactly ``size`` bytes
            req.conn.send_pdu(PDataTF([PDV(1, 0x02, bytes(size - 6))]))
            got = await req.recv_pdu(5.0)
            assert not isinstance(got, PeerEnded), got
            assert isinstance(got.pdu, Abort)
            assert (got.pdu.source, got.pdu.reason) == (2, 6)
            await expect_nothing_left(scp.storage_dir)
    run(go())


def test_pdata_of_exactly_our_maximum_is_fine() -> None:
    async def go() -> None:
        async with running_scp(Profile(max_pdu=16384)) as scp, association(scp.port) as req:
            ds = make_ct(uid(3), rows=128, columns=160)
            data = encode_dataset(ds)
            got = await store(req, data, uid(3))  # fragments fill PDUs to 16384 exactly
            assert status_of(got) == 0
    run(go())


def test_responses_honour_the_requestors_maximum() -> None:
    async def go() -> None:
        async with running_scp() as scp, association(scp.port, max_pdu=64) as req:
            u = uid(4)
            data = encode_dataset(make_ct(u))
            await req.send_message(1, store_command(1, u), data, max_pdu=16384)
            sizes: list[int] = []
            command = b""
            while True:
                got = await req.recv_pdu(3.0)
                assert not isinstance(got, PeerEnded), got
                assert isinstance(got.pdu, PDataTF)
                sizes.append(got.length)
                command += b"".join(bytes(v.data) for v in got.pdu.pdvs)
                if got.pdu.pdvs[-1].is_last:
                    break
            assert len(sizes) > 1 and max(sizes) <= 64, sizes
            from harness.wire.dimse import decode_command

            assert decode_command(command).elements[0x0900] == 0
    run(go())


# --- C-STORE checks -----------------------------------------------------------------------------

def test_duplicate_message_id_while_outstanding_is_0210() -> None:
    async def go() -> None:
        async with running_scp(Profile(delay_before_response=0.2)) as scp, \
                association(scp.port) as req:
            a, b = uid(10), uid(11)
            await req.send_message(1, store_command(5, a), encode_dataset(make_ct(a)))
            await req.send_message(1, store_command(5, b), encode_dataset(make_ct(b)))
            first, second = await req.recv_message(3.0), await req.recv_message(3.0)
            assert [status_of(first), status_of(second)] == [0x0000, 0x0210]
            assert isinstance(second, DimseMessage)
            assert second.command.elements[0x0120] == 5
            assert second.command.elements[0x1000] == b
            # answered, so no longer outstanding: the same ID is fine again
            assert status_of(await store(req, encode_dataset(make_ct(b)), b, msg_id=5)) == 0
            assert isinstance(await req.release(), ReleaseRP)
            assert only_files(scp.storage_dir) == sorted([f"{a}.dcm", f"{b}.dcm"])
            assert leftover_parts(scp.storage_dir) == []
    run(go())


@pytest.mark.parametrize("with_data", [False, True])
def test_unknown_command_field_is_0211_or_abort(with_data: bool) -> None:
    async def go() -> None:
        async with running_scp() as scp, association(scp.port) as req:
            command = encode_elements([
                (0x0002, value_ui(CT)), (0x0100, value_us(0x0040)), (0x0110, value_us(9)),
                (0x0800, value_us(0x0000 if with_data else 0x0101))])
            await req.send_message(1, command, b"\x08\x00\x05\x00CS\x00\x00" if with_data
                                   else None)
            got = await req.recv_message(3.0)
            if isinstance(got, PeerEnded):
                assert got.kind == "abort", got
            else:
                assert status_of(got) == 0x0211
                assert got.command.elements[0x0120] == 9
            # the association still works afterwards when it was answered
            if not isinstance(got, PeerEnded):
                u = uid(12)
                assert status_of(await store(req, encode_dataset(make_ct(u)), u, msg_id=10)) == 0
    run(go())


def test_response_command_field_from_the_requestor_is_aborted() -> None:
    async def go() -> None:
        async with running_scp() as scp, association(scp.port) as req:
            command = encode_elements([(0x0100, value_us(0x8001)), (0x0120, value_us(1)),
                                       (0x0800, value_us(0x0101)), (0x0900, value_us(0))])
            await req.send_message(1, command)
            got = await req.recv_message(3.0)
            assert isinstance(got, PeerEnded) and got.kind == "abort", got
    run(go())


def _truncated(data: bytes) -> bytes:
    return data[:-7]  # inside the pixel data value


def _cut_header(data: bytes) -> bytes:
    return data + b"\x10\x00"  # half of a tag after the last element


def _garbage(data: bytes) -> bytes:
    return bytes((i * 151 + 7) & 0xFF for i in range(len(data)))


@pytest.mark.parametrize("damage", [_truncated, _cut_header, _garbage])
@pytest.mark.parametrize("ts", [EXPLICIT_VR_LE, IMPLICIT_VR_LE, DEFLATED_EXPLICIT_VR_LE])
def test_undecodable_data_set_is_a_failure_and_not_stored(damage: Any, ts: str) -> None:
    async def go() -> None:
        async with running_scp() as scp, association(scp.port, contexts((CT, [ts]))) as req:
            u = uid(20)
            raw = encode_dataset(make_ct(u), IMPLICIT_VR_LE if ts == IMPLICIT_VR_LE
                                 else EXPLICIT_VR_LE)
            data = damage(raw)
            if ts == DEFLATED_EXPLICIT_VR_LE:
                import zlib

                deflater = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
                data = deflater.compress(data) + deflater.flush()
                if damage is _garbage:
                    data = _garbage(data)
            if len(data) % 2:
                data += b"\x00" if damage is not _truncated else b""
            got = await store(req, data, u)
            status = status_of(got)
            assert 0xC000 <= status <= 0xCFFF, hex(status)
            assert isinstance(got, DimseMessage) and got.command.elements.get(0x0902)
            await expect_nothing_left(scp.storage_dir)
            # a good one right after still works
            assert status_of(await store(req, encode_dataset(make_ct(u), ts), u, msg_id=2)) == 0
    run(go())


@pytest.mark.parametrize("what", ["instance", "class"])
def test_data_set_uid_differs_from_command_is_a900(what: str) -> None:
    async def go() -> None:
        async with running_scp() as scp, association(scp.port) as req:
            u = uid(30)
            ds = make_ct(uid(31) if what == "instance" else u,
                         sop_class=MR if what == "class" else CT)
            got = await store(req, encode_dataset(ds), u)
            assert status_of(got) == 0xA900
            await expect_nothing_left(scp.storage_dir)
    run(go())


def test_sop_class_not_matching_the_context_is_0122() -> None:
    async def go() -> None:
        async with running_scp() as scp, association(scp.port) as req:
            u = uid(40)
            got = await store(req, encode_dataset(make_ct(u, sop_class=MR)), u, sop_class=MR)
            assert status_of(got) == 0x0122
            await expect_nothing_left(scp.storage_dir)
    run(go())


@pytest.mark.parametrize("bad", ["1.02.3", "1.2.3.", "1..2", "abc", "../../x", "1.2.3/../../e",
                                 "9" * 65])
def test_invalid_instance_uid_is_0117(bad: str) -> None:
    async def go() -> None:
        async with running_scp() as scp, association(scp.port) as req:
            got = await store(req, encode_dataset(make_ct(bad)), bad)
            assert status_of(got) == 0x0117
            await expect_nothing_left(scp.storage_dir)
    run(go())


MANDATORY = {0x0002: "Affected SOP Class UID", 0x0100: "Command Field", 0x0110: "Message ID",
             0x0700: "Priority", 0x0800: "Command Data Set Type",
             0x1000: "Affected SOP Instance UID"}


@pytest.mark.parametrize("missing", sorted(MANDATORY))
def test_missing_mandatory_command_element_is_never_silent(missing: int) -> None:
    async def go() -> None:
        async with running_scp() as scp, association(scp.port) as req:
            u = uid(50)
            elements = [(0x0002, value_ui(CT)), (0x0100, value_us(0x0001)),
                        (0x0110, value_us(3)), (0x0700, value_us(0)), (0x0800, value_us(0)),
                        (0x1000, value_ui(u))]
            command = encode_elements([e for e in elements if e[0] != missing])
            await req.send_message(1, command, encode_dataset(make_ct(u)))
            got = await req.recv_message(3.0)
            if isinstance(got, PeerEnded):
                assert got.kind in ("abort", "closed"), got
            else:
                status = status_of(got)
                assert status not in (0x0000, 0xFF00, 0xFE00) and not 0xB000 <= status <= 0xBFFF
            await expect_nothing_left(scp.storage_dir)
    run(go())


# --- storage -------------------------------------------------------------------------------------

async def _send_partial(req: Requestor, u: str, data: bytes) -> None:
    req.conn.send_pdu(PDataTF([PDV(1, 0x03, store_command(1, u))]))
    req.conn.send_pdu(PDataTF([PDV(1, 0x00, data[: len(data) // 2])]))
    await req.conn.drain(2.0)


def test_file_appears_only_when_complete() -> None:
    async def go() -> None:
        async with running_scp() as scp, association(scp.port) as req:
            u = uid(60)
            data = encode_dataset(make_ct(u))
            await _send_partial(req, u, data)
            for _ in range(50):
                if leftover_parts(scp.storage_dir):
                    break
                await asyncio.sleep(0.02)
            assert len(leftover_parts(scp.storage_dir)) == 1
            assert not (scp.storage_dir / f"{u}.dcm").exists()
            req.conn.send_pdu(PDataTF([PDV(1, 0x02, data[len(data) // 2:])]))
            assert status_of(await req.recv_message(3.0)) == 0
            assert isinstance(await req.release(), ReleaseRP)
            assert only_files(scp.storage_dir) == [f"{u}.dcm"]
            assert (scp.storage_dir / f"{u}.dcm").read_bytes().endswith(data)
    run(go())


@pytest.mark.parametrize("how", ["abort", "reset", "close", "release"])
def test_store_interrupted_mid_data_set_leaves_nothing(how: str) -> None:
    async def go() -> None:
        async with running_scp() as scp:
            req, answer = await associate(scp.port)
            assert isinstance(answer, AssociateAC)
            u = uid(70)
            await _send_partial(req, u, encode_dataset(make_ct(u)))
            for _ in range(50):
                if leftover_parts(scp.storage_dir):
                    break
                await asyncio.sleep(0.02)
            if how == "abort":
                req.abort()
            elif how == "reset":
                req.conn.reset()
            elif how == "close":
                req.close()
            else:
                # A-RELEASE-RQ inside a data set: RP or A-ABORT are both fine (scenario I03)
                got = await req.release(3.0)
                assert isinstance(got, ReleaseRP) or got.kind in ("abort", "closed"), got
            await expect_nothing_left(scp.storage_dir)
            assert scp.records == []
            # and the server goes on
            async with association(scp.port) as again:
                assert status_of(await echo(again, context_id=1)) == 0
    run(go())


def test_aborted_right_after_a_complete_data_set_leaves_nothing() -> None:
    async def go() -> None:
        async with running_scp(Profile(delay_before_response=0.3)) as scp:
            req, answer = await associate(scp.port)
            assert isinstance(answer, AssociateAC)
            u = uid(71)
            await req.send_message(1, store_command(1, u), encode_dataset(make_ct(u)))
            await asyncio.sleep(0.05)
            req.abort()
            await asyncio.sleep(0.5)
            await expect_nothing_left(scp.storage_dir)
    run(go())


def test_abort_right_behind_a_complete_data_set_leaves_no_partial_file() -> None:
    # Scenario I05: the data set is complete, so keeping it is allowed (INFO); a temporary or
    # a partial file is not.
    async def go() -> None:
        async with running_scp() as scp:
            req, answer = await associate(scp.port)
            assert isinstance(answer, AssociateAC)
            u = uid(72)
            data = encode_dataset(make_ct(u))
            pdus: list[PDataTF | Abort] = [PDataTF([PDV(1, 0x03, store_command(1, u))]),
                                           PDataTF([PDV(1, 0x02, data)]), Abort(0, 0)]
            req.conn.send_bytes(b"".join(p.encode() for p in pdus))
            req.close()
            await asyncio.sleep(0.3)
            assert leftover_parts(scp.storage_dir) == []
            for path in stored_files(scp.storage_dir):
                assert path.name == f"{u}.dcm" and path.read_bytes().endswith(data)
    run(go())


@pytest.mark.parametrize("end", ["release", "abort"])
def test_next_temporary_file_is_opened_ahead_and_never_left(end: str) -> None:
    """After a stored instance the association opens its next store's temporary file while
    the peer reads the response: one empty hidden file, used by that store, gone before
    A-RELEASE-RP (or once the association ends otherwise). A failed store gets none."""
    async def go() -> None:
        async with running_scp() as scp:
            req, answer = await associate(scp.port)
            assert isinstance(answer, AssociateAC)
            bad = uid(91)
            got = await store(req, encode_dataset(make_ct(uid(90))), bad, msg_id=1)
            assert status_of(got) == 0xA900  # data set UID differs: not stored
            assert leftover_parts(scp.storage_dir) == []
            for n in (2, 3):
                u = uid(90 + n)
                assert status_of(await store(req, encode_dataset(make_ct(u)), u,
                                             msg_id=n)) == 0
                [spare] = leftover_parts(scp.storage_dir)
                assert spare.stat().st_size == 0
            assert only_files(scp.storage_dir) == sorted(
                [spare.name, f"{uid(92)}.dcm", f"{uid(93)}.dcm"])
            if end == "release":
                assert isinstance(await req.release(), ReleaseRP)
            else:
                req.abort()
                for _ in range(50):  # the SCP drops it on the loop turn that sees the abort
                    if not leftover_parts(scp.storage_dir):
                        break
                    await asyncio.sleep(0.02)
            assert leftover_parts(scp.storage_dir) == []
            assert only_files(scp.storage_dir) == sorted([f"{uid(92)}.dcm", f"{uid(93)}.dcm"])
            req.close()
    run(go())


def test_storage_failures_are_a700_and_the_association_goes_on(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A storage directory that fails (gone, disk full) gives Refused: Out of Resources with
    a comment that does not reveal the path, leaves nothing, and the next store works."""
    import errno
    import shutil

    from harness.scp.storage import IncomingFile

    real_write = IncomingFile.write

    def full(self: IncomingFile, fragment: Any) -> None:
        if self.received + len(fragment) > 1000:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(self, fragment)

    async def go() -> None:
        async with running_scp() as scp, association(scp.port) as req:
            shutil.rmtree(scp.storage_dir)
            got = await store(req, encode_dataset(make_ct(uid(95))), uid(95), msg_id=1)
            assert status_of(got) == 0xA700
            assert isinstance(got, DimseMessage)
            comment = str(got.command.elements.get(0x0902))
            assert "No such file" in comment
            assert str(scp.storage_dir) not in comment
            scp.storage_dir.mkdir()
            monkeypatch.setattr(IncomingFile, "write", full)
            big = encode_dataset(make_ct(uid(96), rows=64, columns=64))
            got = await store(req, big, uid(96), msg_id=2)
            assert status_of(got) == 0xA700
            assert isinstance(got, DimseMessage)
            assert "No space left" in str(got.command.elements[0x0902])
            assert stored_files(scp.storage_dir) == []
            monkeypatch.setattr(IncomingFile, "write", real_write)
            assert status_of(await store(req, big, uid(96), msg_id=3)) == 0
            assert isinstance(await req.release(), ReleaseRP)
            assert only_files(scp.storage_dir) == [f"{uid(96)}.dcm"]
    run(go())


def test_duplicate_instance_policies() -> None:
    async def go() -> None:
        for policy, kept in (("overwrite", "Second"), ("keep-first", "First")):
            async with running_scp(Profile(duplicate_sop_instance=policy)) as scp, \
                    association(scp.port) as req:
                u = uid(80)
                for i, name in enumerate(("First", "Second")):
                    got = await store(req, encode_dataset(make_ct(u, patient=name)), u,
                                      msg_id=i + 1)
                    assert status_of(got) == 0
                assert isinstance(await req.release(), ReleaseRP)
                [path] = stored_files(scp.storage_dir)
                assert str(read_stored(path).PatientName) == kept
    run(go())


def test_timeouts_have_deadlines() -> None:
    """Our own waits end: a requestor waiting on a silent SCP gets a timeout, not a hang."""
    async def go() -> None:
        async with running_scp(Profile.with_faults("no_response")) as scp, \
                association(scp.port) as req:
            u = uid(90)
            started = time.monotonic()
            got = await store(req, encode_dataset(make_ct(u)), u, timeout=0.3)
            assert isinstance(got, PeerEnded) and got.kind == "timeout"
            assert time.monotonic() - started < 2
            with pytest.raises(PeerTimeout):
                await req.stream.get(0.05)
    run(go())


def test_a_finished_delayed_response_hands_over_to_one_worker_only() -> None:
    """The worker that drains queued responses after a delayed one is started once: if a
    job already started the next worker, the delayed task's end must not start a second
    (two would send queued responses out of order)."""
    import collections

    from harness.scp.server import SCPAssociation

    async def main() -> tuple[bool, bool]:
        async def nothing() -> None:
            return None

        assoc = SCPAssociation.__new__(SCPAssociation)
        first = asyncio.get_running_loop().create_task(nothing())
        await first
        newer = asyncio.get_running_loop().create_task(nothing())
        assoc.queue = collections.deque([lambda: None])
        assoc._release_pending = False
        assoc._worker = newer  # a job already started the next worker
        assoc._after_first(first)
        kept = assoc._worker is newer
        assoc._worker = first  # still the worker: its end starts the drain
        assoc._after_first(first)
        started = assoc._worker is not first
        await asyncio.sleep(0)
        await newer
        return kept, started

    assert asyncio.run(main()) == (True, True)
