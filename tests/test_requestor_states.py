"""The requestor classifies every PDU the SCP sends by PS3.8 Table 9-10.

A scripted misbehaving SCP on loopback (a few lines of asyncio that write PDUs in the wrong
order) must leave a Table 9-10 finding on the offending PDU's trace entry; a conformant
exchange with the reference SCP must leave none; and our own deliberate faults must not turn
into findings against the SCP.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from harness.engine.universal import UniversalChecks
from harness.net.requestor import PeerEnded, Requestor
from harness.net.trace import Trace, TraceEntry
from harness.wire.decode import decode_pdu
from harness.wire.dimse import CEchoRQ, encode_command
from harness.wire.findings import Finding
from harness.wire.items import PresentationContextAC
from harness.wire.pdu import (
    PDV,
    AssociateAC,
    AssociateRQ,
    PDataTF,
    ReleaseRP,
    ReleaseRQ,
    associate_ac,
    associate_rq,
)
from harness.wire.requestor_states import RequestorStates
from harness.wire.states import State
from tests._scp_support import VERIFICATION, contexts, run, running_scp
from tests._scp_support import echo as send_echo

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
TS = "1.2.840.10008.1.2.1"


async def read_pdu(reader: asyncio.StreamReader) -> object:
    header = await asyncio.wait_for(reader.readexactly(6), 5)
    (length,) = struct.unpack_from(">I", header, 2)
    body = await asyncio.wait_for(reader.readexactly(length), 5)
    return decode_pdu(header + body)[0]


def accept(rq: object) -> AssociateAC:
    assert isinstance(rq, AssociateRQ)
    return associate_ac(rq, [PresentationContextAC(pc.context_id, 0, TS)
                             for pc in rq.presentation_contexts])


@asynccontextmanager
async def scripted_scp(script: Script) -> AsyncIterator[int]:
    """A TCP server on 127.0.0.1 running ``script`` on each connection, then closing it."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await script(reader, writer)
            await writer.drain()
            await asyncio.sleep(0.2)  # let the requestor read before the FIN
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await asyncio.wait_for(server.wait_closed(), 5)


def state_findings(entries: list[TraceEntry]) -> list[tuple[TraceEntry, Finding]]:
    return [(e, f) for e in entries for f in e.findings if "Table 9-10" in f.section]


async def session(port: int, trace: Trace, *, after_ac: int = 0) -> Requestor:
    """Connect, send an A-ASSOCIATE-RQ, then read ``after_ac`` more PDUs."""
    req = await Requestor.connect("127.0.0.1", port, timeout=3, trace=trace)
    await req.associate(associate_rq("SCP", "HARNESS", contexts((VERIFICATION, [TS]))))
    for _ in range(after_ac):
        await req.recv_pdu(2)
    req.close()
    return req


def scenario(script: Script, after_ac: int = 0) -> tuple[Trace, RequestorStates | None]:
    async def main() -> tuple[Trace, RequestorStates | None]:
        trace = Trace()
        async with scripted_scp(script) as port:
            req = await session(port, trace, after_ac=after_ac)
        return trace, req.states
    return run(main())


# --- a misbehaving SCP ------------------------------------------------------------------------

async def pdata_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(PDataTF([PDV(1, 0x03, encode_command(CEchoRQ(1)))]).encode())
    await read_pdu(reader)


async def second_ac(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    ac = accept(await read_pdu(reader)).encode()
    writer.write(ac)
    writer.write(ac)


async def unsolicited_rp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(accept(await read_pdu(reader)).encode())
    writer.write(ReleaseRP().encode())


def test_pdata_before_the_ac_is_a_finding() -> None:
    trace, _ = scenario(pdata_first)
    found = state_findings(trace.entries)
    assert [(e.dir, e.type) for e, _ in found] == [("recv", "P-DATA-TF")]
    finding = found[0][1]
    assert "Sta5 + Evt10 -> AA-8" in finding.section
    assert finding.section.startswith("PS3.8 9.2.3 Table 9-10")
    assert finding.found == "P-DATA-TF"
    assert "A-ASSOCIATE-AC" in finding.expected
    # The engine's universal checks turn it into a failed "PDU conformance" (must).
    checks = UniversalChecks()
    checks.received_findings(trace, {})
    assert any("Sta5 + Evt10" in text and severity == "must"
               for severity, text in checks.problems["PDU conformance"])


def test_a_second_ac_is_a_finding() -> None:
    trace, states = scenario(second_ac, after_ac=1)
    acs = [e for e in trace.entries if e.dir == "recv" and e.type == "A-ASSOCIATE-AC"]
    assert len(acs) == 2
    assert not state_findings(acs[:1])  # the first one answers our RQ
    [(_, finding)] = state_findings(acs[1:])
    assert "Sta6 + Evt3 -> AA-8" in finding.section
    assert states is not None and states.state is not None  # followed to the end (Sta13/Sta1)


def test_an_unsolicited_release_rp_is_a_finding() -> None:
    trace, _ = scenario(unsolicited_rp, after_ac=1)
    [(entry, finding)] = state_findings(trace.entries)
    assert entry.type == "A-RELEASE-RP"
    assert "Sta6 + Evt13 -> AA-8" in finding.section


# --- the reference SCP (conformant) -----------------------------------------------------------

def test_conformant_exchange_has_no_state_finding() -> None:
    async def main() -> tuple[Trace, RequestorStates | None, object]:
        trace = Trace()
        async with running_scp() as scp:
            req = await Requestor.connect("127.0.0.1", scp.port, timeout=5, trace=trace)
            await req.associate(associate_rq("ANY-SCP", "HARNESS",
                                             contexts((VERIFICATION, [TS]))))
            await send_echo(req)
            rp = await req.release(close=False)
            await req.conn.wait_closed(5)
            req.close()
        return trace, req.states, rp

    trace, states, rp = run(main())
    assert isinstance(rp, ReleaseRP)
    assert not state_findings(trace.entries)
    assert states is not None
    path = [(before.value, event.value, after.value) for before, event, _, after in
            states.history]
    assert path == [("Sta1", "Evt1", "Sta4"), ("Sta4", "Evt2", "Sta5"),
                    ("Sta5", "Evt3", "Sta6"), ("Sta6", "Evt11", "Sta7"),
                    ("Sta7", "Evt13", "Sta1")]


def test_our_own_fault_is_no_finding_against_the_scp() -> None:
    """A release request sent as raw bytes is no table event: the A-RELEASE-RP answering it
    would otherwise look unsolicited (Sta6 + Evt13)."""
    async def main() -> tuple[Trace, RequestorStates | None, object]:
        trace = Trace()
        async with running_scp() as scp:
            req = await Requestor.connect("127.0.0.1", scp.port, timeout=5, trace=trace)
            await req.associate(associate_rq("ANY-SCP", "HARNESS",
                                             contexts((VERIFICATION, [TS]))))
            req.conn.send_bytes(ReleaseRQ().encode(), "A-RELEASE-RQ (raw)")
            got = await req.recv_pdu(5)
            req.close()
        return trace, req.states, got

    trace, states, got = run(main())
    assert not isinstance(got, PeerEnded) and isinstance(got.pdu, ReleaseRP)
    assert not state_findings(trace.entries)
    assert states is not None and states.state is None


def test_out_of_state_sends_follow_the_table_or_become_unknown() -> None:
    states = RequestorStates()
    states.connected()
    states.sent(0x01)
    assert states.state is State.STA5
    states.sent(0x04)  # P-DATA-TF before the AC: Evt9 has no cell in Sta5
    assert states.state is None
    assert states.received(0x02) is None  # whatever comes next is not judged

    states = RequestorStates()
    states.connected()
    states.sent(0x01)
    assert states.received(0x02) is None  # the AC: Sta6
    states.sent(0x07)  # our A-ABORT (Evt15, AA-1): the table says Sta13
    assert states.state is State.STA13
    assert states.received(0x04) is None  # AA-6: it crossed our abort, ignored
    assert states.received(0x06) is None  # AA-6 again
