"""The session, driven by the official SDK `openai-codex` (0.163.0) against `spec["command"]`.

initialize → thread/start → turn → thread/resume → thread/fork → turn on the fork →
ephemeral thread/start → wait for codex's analytics POSTs → close (stdin EOF, SIGTERM, and
SIGKILL 2 s later: the SDK's own shutdown).

Traps handled (shared/docs/real-codex-peer.md, "Traps seen …"):
* `thread_start()` defaults to `ApprovalMode.auto_review`, which makes codex start an invisible
  guardian reviewer subagent (with its own `codex_thread_initialized`) on every thread/start and
  thread/fork. `ApprovalMode.deny_all` (approvalPolicy "never", no approvalsReviewer) avoids it;
  resume/fork pass no approval mode, so the thread's own setting is kept.
* `launch_args_override` replaces the whole argv: the command is used verbatim.
"""

from __future__ import annotations

import sys
from typing import Any

from _common import load_spec, new_result, record_error, step, wait_for_posts, write_result
from openai_codex import ApprovalMode, Codex, CodexConfig


def run(spec: dict[str, Any], result: dict[str, Any]) -> None:
    cwd = spec["cwd"]
    # spec["options"]["approval_mode"] = "auto_review" reproduces the SDK's default (and its
    # invisible guardian threads); the session uses deny_all unless told otherwise.
    approval_mode = ApprovalMode(spec.get("options", {}).get("approval_mode", "deny_all"))
    config = CodexConfig(
        launch_args_override=tuple(spec["command"]),
        env=dict(spec["env"]),
        cwd=cwd,
        **({"client_name": spec["client_name"]} if spec.get("client_name") else {}),
    )
    codex: Codex | None = None
    proc = None
    try:
        with step(result, "initialize") as rec:
            codex = Codex(config=config)  # spawns the command, initialize + initialized
            proc = codex._client._proc
            rec["user_agent"] = codex.metadata.userAgent
        result["initialize"] = codex.metadata.model_dump(mode="json")

        with step(result, "thread/start") as rec:
            thread = codex.thread_start(cwd=cwd, approval_mode=approval_mode)
            rec["thread_id"] = thread.id
            result["thread_ids"].append(thread.id)
        with step(result, "turn", thread_id=thread.id) as rec:
            turn = thread.run("say ok")
            rec.update(turn_id=turn.id, status=str(turn.status.value), text=turn.final_response)
        with step(result, "thread/resume") as rec:
            resumed = codex.thread_resume(thread.id)
            rec["thread_id"] = resumed.id
        with step(result, "thread/fork") as rec:
            fork = codex.thread_fork(thread.id)
            rec["thread_id"] = fork.id
            result["thread_ids"].append(fork.id)
        with step(result, "turn", thread_id=fork.id) as rec:
            turn = fork.run("in fork")
            rec.update(turn_id=turn.id, status=str(turn.status.value), text=turn.final_response)
        with step(result, "thread/start", ephemeral=True) as rec:
            ephemeral = codex.thread_start(cwd=cwd, ephemeral=True, approval_mode=approval_mode)
            rec["thread_id"] = ephemeral.id
            result["thread_ids"].append(ephemeral.id)
        wait_for_posts(spec, result)
    finally:
        if codex is not None:
            with step(result, "close"):
                codex.close()
            result["peer_stderr_tail"] = list(codex._client._stderr_lines)[-40:]
        if proc is not None:
            proc.wait(timeout=10)  # close() may have ended with kill() and no wait()
            result["peer_exit_code"] = proc.returncode


def main() -> int:
    spec = load_spec()
    result = new_result("openai-codex")
    try:
        run(spec, result)
    except BaseException as exc:
        record_error(result, exc)
    write_result(spec, result)
    return 0 if result["error"] is None else 1


if __name__ == "__main__":
    sys.exit(main())
