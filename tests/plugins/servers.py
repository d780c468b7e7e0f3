"""Fixtures: the local Prodia server and a forward proxy, each on 127.0.0.1 and closed after the test."""

from collections.abc import AsyncIterator

import pytest

from devtools.local_prodia import LocalProdia
from tests.plugins.proxy import ForwardProxy


@pytest.fixture
async def prodia() -> AsyncIterator[LocalProdia]:
    """A local Prodia server (v1 and v2) with tiny images, closed after the test."""
    async with LocalProdia(image_scale=0.125) as server:
        yield server


@pytest.fixture
async def forward_proxy() -> AsyncIterator[ForwardProxy]:
    """A plain-HTTP forward proxy recording the absolute URLs it forwarded in `.seen`."""
    async with ForwardProxy() as proxy:
        yield proxy
