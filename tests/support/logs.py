"""Reading the operator's log (JSON lines) for what must not be there."""

from __future__ import annotations

import re

#: Client errors a loaded API server causes without any fault of the operator, named precisely:
#: a connection the server dropped mid-response, a read that timed out. Anything else is a finding.
TRANSIENT_CLIENT_ERRORS = re.compile(
    r"urllib3\.exceptions\.(ProtocolError: \('Connection (aborted|broken)|ReadTimeoutError)"
    r"|aiohttp\.client_exceptions\.(ServerDisconnectedError|ClientOSError: \[Errno 104\] Connection reset by peer)"
)


def tracebacks(log: str, tolerated: re.Pattern[str] = TRANSIENT_CLIENT_ERRORS) -> list[str]:
    """Log lines carrying a Python traceback, except those whose error is a tolerated transient one."""
    return [line for line in log.splitlines() if "Traceback" in line and not tolerated.search(line)]
