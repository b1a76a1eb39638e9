"""The two relay threads of the stdio proxy: blocking ``os.read``/``os.write`` on raw fds.

No asyncio and no Python-level buffering: a chunk is written to the other side as soon as it
is read. It is queued for the analytics session just before the write (an append: cause stays
before effect for the tap) and the worker is woken just after. Reads are up to 1 MiB, so a
multi-MB line moves in a few large chunks and no line is ever assembled here.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable

from .proxy_lines import ClientOutput, ClientStreamFilter
from .session import TapSession

READ_SIZE = 1 << 20


def write_all(fd: int, data: bytes) -> None:
    written = os.write(fd, data)
    if written == len(data):
        return
    view = memoryview(data)[written:]
    while view:
        written = os.write(fd, view)
        view = view[written:]


def pump_client_to_server(
    client_fd: int,
    server_fd: int,
    stream_filter: ClientStreamFilter,
    session: TapSession,
    on_done: Callable[[], object],
) -> None:
    """stdin of the proxy → stdin of the child, minus ``rpcAnalytics/*`` requests.

    Ends at the client's EOF (or a read error) or when the child stops reading; either way the
    child's stdin is closed, which is how the child learns the client is done.
    """
    read, now = os.read, time.time
    observe, notify = session.observe, session.notify
    extension_request = session.extension_request
    feed = stream_filter.feed
    try:
        while True:
            try:
                chunk = read(client_fd, READ_SIZE)
            except OSError:
                chunk = b""
            if not chunk:
                forward, requests = stream_filter.finish()
            else:
                forward, requests = feed(chunk)
            if forward:
                observe("c2s", forward, now())
                write_all(server_fd, forward)
                notify()
            for line in requests:
                extension_request(line, now())
            if not chunk:
                break
    except OSError:
        pass  # the child closed its stdin or died: nothing more can be delivered
    finally:
        with contextlib.suppress(OSError):
            os.close(server_fd)
        on_done()


def pump_server_to_client(
    server_fd: int,
    output: ClientOutput,
    session: TapSession,
    on_done: Callable[[], object],
) -> None:
    """stdout of the child → stdout of the proxy. At the child's EOF the client-facing stdout
    is closed at once (``output.close``), even if the child itself lingers."""
    read, now = os.read, time.time
    observe, notify = session.observe, session.notify
    server_chunk = output.server_chunk
    try:
        while True:
            try:
                chunk = read(server_fd, READ_SIZE)
            except OSError:
                break
            if not chunk:
                break
            observe("s2c", chunk, now())
            server_chunk(chunk)
            notify()
    finally:
        output.close()
        with contextlib.suppress(OSError):
            os.close(server_fd)
        on_done()
