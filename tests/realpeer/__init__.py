"""Real-peer test infrastructure: the real `codex app-server` 0.169.0 run offline as a test peer.

See shared/docs/real-codex-peer.md. Modules:

* `peer_install`: installs the pinned codex binary (npm) and a Python 3.12 venv with the SDKs.
* `backend`: the loopback fake ChatGPT/Responses backend that records codex's analytics POSTs.
* `codex_home`: throwaway `CODEX_HOME` directories (config.toml and a fabricated auth.json).
* `netns`: running a command in a fresh network namespace that has only loopback.
* `driver`: one session inside the namespace (backend + CODEX_HOME + client + peer command).
"""
