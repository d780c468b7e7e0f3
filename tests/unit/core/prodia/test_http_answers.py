"""What `bot.core.prodia.http` makes of answers the local Prodia server never gives: error bodies in every shape (a
multipart `job` part, a JSON `job` object, JSON that is no object, text, nothing readable) and bodies right at the
byte cap. A server on 127.0.0.1 answers exactly what each test asks, over real HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from bot.core.errors import (
    AuthError,
    BadResponse,
    CapacityError,
    InvalidRequest,
    JobFailed,
    ProdiaError,
    QuotaError,
    ServerError,
)
from bot.core.prodia.http import ERROR_BODY_LIMIT, error_for, read_capped

BOUNDARY = "b0undary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def multipart(**parts: bytes) -> bytes:
    body = b""
    for name, data in parts.items():
        head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n'
        body += f"{head}Content-Type: application/json\r\n\r\n".encode() + data + b"\r\n"
    return body + f"--{BOUNDARY}--\r\n".encode()


class Answers:
    """Answers the next request with `status`, `body` and `content_type`; `chunked` leaves Content-Length out."""

    def __init__(self) -> None:
        self.status, self.body, self.content_type, self.chunked = 200, b"", "application/json", False
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._answer)
        self.runner = web.AppRunner(app)

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        if self.chunked:
            response = web.StreamResponse(status=self.status, headers={"Content-Type": self.content_type})
            response.enable_chunked_encoding()
            await response.prepare(request)
            for start in range(0, len(self.body), 1000):
                await response.write(self.body[start : start + 1000])
            await response.write_eof()
            return response
        return web.Response(status=self.status, body=self.body, headers={"Content-Type": self.content_type})

    def will(self, status: int, body: bytes, content_type: str = "application/json", *, chunked: bool = False) -> None:
        self.status, self.body, self.content_type, self.chunked = status, body, content_type, chunked


@pytest.fixture
async def answers() -> AsyncIterator[Answers]:
    server = Answers()
    await server.runner.setup()
    await web.TCPSite(server.runner, "127.0.0.1", 0).start()
    server.url = f"http://127.0.0.1:{server.runner.addresses[0][1]}"  # type: ignore[attr-defined]
    yield server
    await server.runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def error_of(session, answers, status: int, body: bytes, content_type: str = "application/json") -> ProdiaError:
    answers.will(status, body, content_type)
    async with session.post(f"{answers.url}/v2/job") as resp:
        return await error_for(resp, lambda text: text.replace("secret", "[key]"))


@pytest.mark.parametrize(
    ("status", "kind"),
    [(400, InvalidRequest), (422, InvalidRequest), (401, AuthError), (403, AuthError), (402, QuotaError),
     (429, CapacityError), (500, ServerError), (503, ServerError), (418, BadResponse), (404, BadResponse)],
)  # fmt: skip
async def test_each_status_makes_its_kind_of_error(session, answers, status, kind):
    error = await error_of(session, answers, status, b'{"message": "no"}')
    assert type(error) is kind and error.status == status
    assert str(error) == f"HTTP {status} from POST /v2/job: no"


async def test_a_multipart_error_takes_the_job_parts_error_and_a_failed_job_is_not_sent_again(session, answers):
    job = json.dumps({"state": {"current": "failed"}, "error": "out of memory"}).encode()
    error = await error_of(session, answers, 500, multipart(job=job), MULTIPART)
    assert type(error) is JobFailed and error.params["reason"] == "out of memory"
    # The same job not failed (still queued, say): a server error, which may be sent again.
    job = json.dumps({"state": {"current": "queued"}, "error": "busy"}).encode()
    error = await error_of(session, answers, 500, multipart(job=job), MULTIPART)
    assert type(error) is ServerError
    # A failed job's 4xx stays what its status says.
    job = json.dumps({"state": {"current": "failed"}, "error": "bad steps"}).encode()
    error = await error_of(session, answers, 400, multipart(job=job), MULTIPART)
    assert type(error) is InvalidRequest and error.params["reason"] == "bad steps"


async def test_a_json_body_with_a_failed_job_object_is_a_failed_job(session, answers):
    body = json.dumps({"job": {"state": {"current": "failed"}}, "message": "it broke"}).encode()
    error = await error_of(session, answers, 502, body)
    assert type(error) is JobFailed and error.params["reason"] == "it broke"
    error = await error_of(session, answers, 502, json.dumps({"job": "failed", "message": "x"}).encode())
    assert type(error) is ServerError  # a `job` that is no object says nothing of a job


async def test_a_multipart_error_without_a_job_part_or_reason_says_no_reason(session, answers):
    error = await error_of(session, answers, 400, multipart(other=b"{}"), MULTIPART)
    assert type(error) is InvalidRequest
    assert error.params["reason"] == "HTTP 400"  # what the user reads in place of Prodia's words
    assert str(error).endswith(": (no reason given)")
    error = await error_of(session, answers, 400, multipart(job=b"not json"), MULTIPART)
    assert error.params["reason"] == "HTTP 400"


async def test_prodias_reason_fields_are_joined_and_its_text_kept(session, answers):
    body = json.dumps({"message": "invalid", "detail": 42, "error": "steps", "other": "ignored"}).encode()
    assert (await error_of(session, answers, 400, body)).params["reason"] == "invalid: 42: steps"
    assert (await error_of(session, answers, 400, b'["a list"]')).params["reason"] == "HTTP 400"  # JSON, no object
    text = await error_of(session, answers, 400, b"plain words with the secret", "text/plain")
    assert text.params["reason"] == "plain words with the [key]"  # redacted
    latin = await error_of(session, answers, 400, "caf\u00e9".encode("latin-1"), "text/plain")
    assert latin.params["reason"] == "caf\ufffd"  # undecodable bytes replaced, not an error


async def test_an_error_body_too_large_or_malformed_is_no_reason(session, answers):
    error = await error_of(session, answers, 400, b"x" * (ERROR_BODY_LIMIT + 1), "text/plain")
    assert error.params["reason"] == "HTTP 400"
    error = await error_of(session, answers, 503, b"--nope", "multipart/form-data; boundary=other")
    assert type(error) is ServerError and str(error).endswith(": (no reason given)")


@pytest.mark.parametrize("chunked", [False, True])  # with a Content-Length, and streamed without one
async def test_a_body_of_exactly_the_cap_is_read_and_one_byte_more_is_refused(session, answers, chunked):
    answers.will(200, b"x" * 2500, "image/png", chunked=chunked)
    async with session.get(f"{answers.url}/image") as resp:
        assert await read_capped(resp, 2500) == b"x" * 2500
    async with session.get(f"{answers.url}/image") as resp:
        with pytest.raises(BadResponse, match="over the 2499-byte cap"):
            await read_capped(resp, 2499)


async def test_a_body_of_many_chunks_comes_back_byte_for_byte(session, answers):
    body = bytes(range(256)) * 800  # 200 KiB: several of the reader's 64 KiB chunks
    answers.will(200, body, "image/png", chunked=True)
    async with session.get(f"{answers.url}/image") as resp:
        assert await read_capped(resp, len(body)) == body
