"""The bundled example: a session recorded from codex 0.169.0, and a scripted app-server that
plays the server's side of a recorded transcript (``scripted_server``)."""
