"""Clients we did not write, run unmodified against the local Prodia server.

Our own clients (tests/unit/core/prodia/test_clients.py) can only prove the server agrees with our reading of the
API. These tests drive third-party clients instead, so a pass means the server speaks what Prodia's live
API speaks, as those clients understand it:

- Prodia's official JS client, npm ``prodia`` 1.6.0 (pinned in tests/compat/package-lock.json): v2
  (``prodia/v2``: one multipart ``POST /job``, retries on 429, typed errors) through
  tests/compat/v2.mjs, and v1 (``prodia``: submit, poll, list models) through tests/compat/v1.mjs.
  Each script runs one case in Node and prints one JSON line; the assertions are here.
- prodiapy 5.1.6 (PyPI, unofficial, synchronous ``requests``), v1 only, run in a thread.

Every case checks both what the client returned and what crossed the wire (``server.requests``).
The expected errors are those the official client's own tests expect from the live API.
Without node/npm the JS cases skip, or fail when ``CI`` or ``REQUIRE_OFFICIAL_CLIENTS`` is set.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
import pytest
from PIL import Image
from prodiapy import Prodia
from prodiapy.exceptions import AuthenticationError

from devtools.local_prodia import Fault, LocalProdia
from tests import REPO_ROOT

if TYPE_CHECKING:
    from devtools.local_prodia import RecordedRequest

COMPAT = Path(__file__).resolve().parent  # the Node scripts and their lockfile
TOKEN = "compat-token-7d21"
PROMPT = "puppies in a cloud, 4k"
JPEG, PNG = "ffd8ff", "89504e470d0a1a0a"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
IMG2IMG = "inference.flux-2.pro.img2img.v1"


@pytest.fixture(scope="session")
def node() -> str:
    """The node binary, with tests/compat/node_modules installed from the lockfile (`npm ci`) if missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        reason = "node and npm are needed to run Prodia's official JS client (tests/compat)"
        if os.environ.get("CI") or os.environ.get("REQUIRE_OFFICIAL_CLIENTS"):
            pytest.fail(reason)
        pytest.skip(reason)
    if not (COMPAT / "node_modules" / "prodia" / "package.json").is_file():
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=COMPAT, capture_output=True, text=True)
        if done.returncode != 0:
            pytest.fail(f"npm ci in {COMPAT} failed:\n{done.stdout}\n{done.stderr}")
    return node


@pytest.fixture
async def server() -> AsyncIterator[LocalProdia]:
    async with LocalProdia(api_key=TOKEN) as server:
        yield server


async def run_node(node: str, script: str, case: str, base_url: str, token: str = TOKEN, *extra: str) -> dict:
    """Run one case of a tests/compat script without blocking the loop the server runs in."""
    proc = await asyncio.create_subprocess_exec(
        node, script, case, base_url, token, *extra,
        cwd=COMPAT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, f"{script} {case} crashed:\n{err.decode()}"
    lines = out.decode().splitlines()
    assert len(lines) == 1, out.decode()
    return json.loads(lines[0])


def posts(server: LocalProdia, path: str) -> list[RecordedRequest]:
    return [r for r in server.requests if r.method == "POST" and r.path == path]


def job_part(request: RecordedRequest) -> dict:
    part = request.form_parts()["job"]
    assert part.get_content_type() == "application/json"
    assert part.get_filename() == "job.json"
    return json.loads(part.get_content())


# -- official JS client, v2 ------------------------------------------------------------------------


async def test_v2_default_accept_returns_a_jpeg(node, server):
    result = await run_node(node, "v2.mjs", "default", server.v2_url)
    assert result.get("ok"), result
    assert result["magic"].startswith(JPEG) and result["jobId"]
    [request] = posts(server, "/v2/job")
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Accept"] == "multipart/form-data"
    assert job_part(request) == {"type": "inference.flux-fast.schnell.txt2img.v2", "config": {"prompt": PROMPT}}


async def test_v2_accept_png_returns_a_png(node, server):
    result = await run_node(node, "v2.mjs", "png", server.v2_url)
    assert result.get("ok"), result
    assert result["magic"] == PNG
    [request] = posts(server, "/v2/job")
    assert request.headers["Accept"] == "multipart/form-data; image/png"  # sic: how the client joins them
    config = {"prompt": PROMPT, "steps": 1, "width": 1024, "height": 1024}
    assert job_part(request) == {"type": "inference.flux.schnell.txt2img.v1", "config": config}


async def test_v2_out_of_range_config_is_a_user_error_naming_the_field(node, server):
    result = await run_node(node, "v2.mjs", "bad-config", server.v2_url)
    assert result.get("error") == "ProdiaUserError", result
    assert "steps" in result["message"] and "maximum: got 1,000" in result["message"]
    assert UUID.search(result["message"]), result["message"]  # "<error> (id: <job id>)"
    assert len(posts(server, "/v2/job")) == 1  # a 400 is not retried


async def test_v2_bad_token_is_a_bad_response_401(node, server):
    result = await run_node(node, "v2.mjs", "default", server.v2_url, "not-the-token")
    assert result.get("error") == "ProdiaBadResponseError", result
    assert "401 token is invalid" in result["message"]
    assert len(posts(server, "/v2/job")) == 1


async def test_v2_job_without_type_ends_in_capacity_error_after_retries(node, server):
    result = await run_node(node, "v2.mjs", "no-type", server.v2_url)  # maxRetries: 2
    assert result.get("error") == "ProdiaCapacityError", result
    assert "Are your sure your token and job type are correct?" in result["message"]  # sic
    assert len(posts(server, "/v2/job")) == 3


async def test_v2_client_honours_429_retry_after_then_succeeds(node, server):
    server.add_fault(Fault(kind="status", status=429, retry_after=1, times=1))
    result = await run_node(node, "v2.mjs", "default", server.v2_url)
    assert result.get("ok"), result
    assert result["magic"].startswith(JPEG)
    first, second = posts(server, "/v2/job")
    assert job_part(first) == job_part(second)


async def test_v2_input_image_part(node, server, tmp_path):
    source = tmp_path / "input.jpg"
    Image.new("RGB", (64, 64), (200, 40, 40)).save(source, "JPEG")
    result = await run_node(node, "v2.mjs", "img2img", server.v2_url, TOKEN, str(source))
    assert result.get("ok"), result
    assert result["magic"].startswith(JPEG)
    [request] = posts(server, "/v2/job")
    parts = request.form_parts()
    assert parts["input"].get_content_type() == "image/jpeg" and parts["input"].get_filename() == "image.jpg"
    assert parts["input"].get_content() == source.read_bytes()
    assert job_part(request) == {"type": IMG2IMG, "config": {"prompt": PROMPT}}


# -- official JS client, v1 ------------------------------------------------------------------------


async def test_v1_generate_wait_and_download_a_png(node, server):
    result = await run_node(node, "v1.mjs", "generate", server.v1_url)
    assert result.get("ok"), result
    assert result["status"] == "succeeded" and result["imageUrl"] and result["magic"] == PNG
    [request] = posts(server, "/v1/sd/generate")
    assert request.headers["X-Prodia-Key"] == TOKEN
    assert request.json == {"prompt": PROMPT, "steps": 20, "cfg_scale": 7, "seed": 42}
    assert any(r.method == "GET" and r.path == f"/v1/job/{result['jobId']}" for r in server.requests)


async def test_v1_xl_generate(node, server):
    result = await run_node(node, "v1.mjs", "xl", server.v1_url)
    assert result.get("ok"), result
    assert result["status"] == "succeeded" and result["magic"] == PNG
    [request] = posts(server, "/v1/sdxl/generate")
    assert request.json == {"prompt": PROMPT}


async def test_v1_list_models(node, server):
    result = await run_node(node, "v1.mjs", "models", server.v1_url)
    assert result.get("ok"), result
    models = result["models"]
    assert models and all(isinstance(name, str) and name for name in models)
    assert [(r.method, r.path) for r in server.requests] == [("GET", "/v1/models/list")]
    assert server.requests[0].headers["X-Prodia-Key"] == TOKEN


async def test_v1_bad_key(node, server):
    result = await run_node(node, "v1.mjs", "generate", server.v1_url, "not-the-key")
    assert result == {"error": "Error", "message": "Bad Prodia Response: 401"}


async def test_v1_refused_config(node, server):
    result = await run_node(node, "v1.mjs", "bad-config", server.v1_url)
    assert result == {"error": "Error", "message": "Bad Prodia Response: 400"}


# -- prodiapy (unofficial, v1) ---------------------------------------------------------------------


async def test_prodiapy_sd_generate_with_size(server):
    client = Prodia(api_key=TOKEN, base_url=server.v1_url)

    def generate_and_wait():
        return client.wait(client.sd.generate(prompt=PROMPT, width=512, height=768))

    result = await asyncio.to_thread(generate_and_wait)
    assert not result.failed and result.json["status"] == "succeeded" and result.image_url
    [request] = posts(server, "/v1/sd/generate")
    assert request.headers["X-Prodia-Key"] == TOKEN
    assert request.json == {"prompt": PROMPT, "width": 512, "height": 768}
    async with aiohttp.ClientSession() as http, http.get(result.image_url) as resp:
        with Image.open(io.BytesIO(await resp.read())) as image:
            assert (image.format, image.size) == ("PNG", (512, 768))


async def test_prodiapy_sdxl_generate(server):
    client = Prodia(api_key=TOKEN, base_url=server.v1_url)
    result = await asyncio.to_thread(lambda: client.wait(client.sdxl.generate(prompt=PROMPT)))
    assert not result.failed and result.json["status"] == "succeeded" and result.image_url
    assert posts(server, "/v1/sdxl/generate")[0].json == {"prompt": PROMPT}


async def test_prodiapy_constants_lists_sd_models(server):
    client = Prodia(api_key=TOKEN, base_url=server.v1_url)
    names = await asyncio.to_thread(client.constants)
    assert names and all(isinstance(name, str) and name for name in names)
    assert [(r.method, r.path) for r in server.requests] == [("GET", "/v1/sd/models")]


async def test_prodiapy_bad_key_raises_authentication_error(server):
    client = Prodia(api_key="not-the-key", base_url=server.v1_url)
    with pytest.raises(AuthenticationError, match="Prodia API returned 401"):
        await asyncio.to_thread(client.sd.generate, prompt=PROMPT)


# -- the standalone server, as a newcomer runs it ----------------------------------------------------


async def test_official_clients_generate_against_python_m_bot_local_prodia(node):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "devtools.local_prodia", "--port", "0", "--api-key", TOKEN,
        cwd=REPO_ROOT, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        root = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)[1]
        v2 = await run_node(node, "v2.mjs", "default", f"{root}/v2")
        v1 = await run_node(node, "v1.mjs", "generate", f"{root}/v1")
    finally:
        proc.terminate()
        await proc.wait()
    assert v2.get("ok") and v2["magic"].startswith(JPEG), v2
    assert v1.get("ok") and v1["magic"] == PNG, v1
