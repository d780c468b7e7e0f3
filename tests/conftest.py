from collections.abc import AsyncIterator

import pytest

from bot.local_prodia import LocalProdia
from tests.proxy import ForwardProxy


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
