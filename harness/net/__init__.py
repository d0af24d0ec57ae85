"""asyncio association endpoints over :mod:`harness.wire`: requestor, acceptor, traces."""
