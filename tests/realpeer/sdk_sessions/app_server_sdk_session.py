"""The session, driven by `codex-app-server-sdk` (0.4.1) against `spec["command"]`.

initialize → thread/start → turn → thread/resume → thread/fork → turn on the fork →
ephemeral thread/start → wait for codex's analytics POSTs → close (stdin EOF, SIGTERM, and
SIGKILL 2 s later: the SDK's own shutdown).

Traps handled (shared/docs/real-codex-peer.md §7.3 and "Traps seen …"):
* `connect_stdio(env=…)` *replaces* the child's environment (asyncio subprocess `env`), so the
  script passes `os.environ` plus the session's variables.
* Its stdio reader keeps asyncio's default 64 KiB line limit: fine for this short session.
* It sends `"jsonrpc":"2.0"` and integer ids; the server accepts both.
* `initialize(params)` merges `params` shallowly into its defaults: a `clientInfo` given here
  replaces the SDK's whole clientInfo (used when spec["client_name"] is set).
* Approvals: without a handler, `approval_mode="auto"` declines every approval request.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from _common import load_spec, new_result, record_error, step, wait_for_posts, write_result
from codex_app_server_sdk import CodexClient, ThreadConfig
from codex_app_server_sdk import __version__ as sdk_version


async def run(spec: dict[str, Any], result: dict[str, Any]) -> None:
    cwd = spec["cwd"]
    timeout = float(spec["step_timeout_s"])
    client = CodexClient.connect_stdio(
        command=list(spec["command"]),
        cwd=cwd,
        env={**os.environ, **spec["env"]},
        request_timeout=timeout,
        inactivity_timeout=timeout,
    )
    proc = None
    try:
        with step(result, "initialize") as rec:
            await client.start()
            proc = client._transport._proc
            params = None
            if spec.get("client_name"):
                params = {"clientInfo": {"name": spec["client_name"], "version": sdk_version}}
            init = await client.initialize(params)
            rec["user_agent"] = init.raw.get("userAgent")
        result["initialize"] = init.raw

        with step(result, "thread/start") as rec:
            thread = await client.start_thread(ThreadConfig(cwd=cwd))
            rec["thread_id"] = thread.thread_id
            result["thread_ids"].append(thread.thread_id)
        with step(result, "turn", thread_id=thread.thread_id) as rec:
            chat = await thread.chat_once("say ok")
            rec.update(turn_id=chat.turn_id, text=chat.final_text)
        with step(result, "thread/resume") as rec:
            resumed = await client.resume_thread(thread.thread_id)
            rec["thread_id"] = resumed.thread_id
        with step(result, "thread/fork") as rec:
            fork = await thread.fork()
            rec["thread_id"] = fork.thread_id
            result["thread_ids"].append(fork.thread_id)
        with step(result, "turn", thread_id=fork.thread_id) as rec:
            chat = await fork.chat_once("in fork")
            rec.update(turn_id=chat.turn_id, text=chat.final_text)
        with step(result, "thread/start", ephemeral=True) as rec:
            ephemeral = await client.start_thread(ThreadConfig(cwd=cwd, ephemeral=True))
            rec["thread_id"] = ephemeral.thread_id
            result["thread_ids"].append(ephemeral.thread_id)
        await asyncio.to_thread(wait_for_posts, spec, result)
    finally:
        with step(result, "close"):
            await client.close()
        if proc is not None:
            result["peer_exit_code"] = await asyncio.wait_for(proc.wait(), 10)


def main() -> int:
    spec = load_spec()
    result = new_result("codex-app-server-sdk")
    try:
        asyncio.run(run(spec, result))
    except BaseException as exc:
        record_error(result, exc)
    write_result(spec, result)
    return 0 if result["error"] is None else 1


if __name__ == "__main__":
    sys.exit(main())
