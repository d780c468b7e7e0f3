"""`python -m devtools.local_prodia` as an operator runs it: a port it cannot take is one sentence, not a traceback."""

from __future__ import annotations

import socket
import subprocess
import sys

from tests import REPO_ROOT


def test_a_port_in_use_is_one_sentence_and_a_failing_exit():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "devtools.local_prodia", "--port", str(port)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"Cannot start the local Prodia server: cannot listen on 127.0.0.1:{port}: it is already in use (by another "
        "local server or program); choose another with --port N (0 picks a free one)."
    ]
