"""Take docs/playground.png: the playground after a real `/imagine`, as a browser shows it.

Not part of the tests or CI. Needs the `playground` extra, the Playwright *Python package* and a Chromium
binary (e.g. Debian's `apt-get install chromium`; no `playwright install` needed):

    pip install -e '.[playground]' playwright
    python docs/make_screenshot.py [--chromium /usr/bin/chromium] [--out docs/playground.png]

It starts the playground exactly as `python -m bot --playground` does (local Prodia server, unless a Prodia
key is configured), opens the page in headless Chromium, runs `/imagine prompt:a lighthouse at dusk
sampler:DDIM` as the playground user, waits for the result and captures the page.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from playwright.async_api import Page, async_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from devtools.playground import live_preview, open_playground

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PROMPT = "a lighthouse at dusk"
SAMPLER = "DDIM"


async def wait_for_result(page: Page, seconds: float) -> None:
    """Until the page shows the result embed's image, fully loaded."""
    await page.wait_for_function(
        """(prompt) => document.body.innerText.includes(prompt)
            && [...document.images].some((img) => img.complete && img.naturalWidth >= 128)""",
        arg=PROMPT,
        timeout=seconds * 1000,
    )


async def main(chromium: str, out: Path, progress_out: Path | None, size: tuple[int, int]) -> None:
    async with open_playground() as playground:
        async with live_preview(playground) as preview:
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
                page = await browser.new_page(viewport={"width": size[0], "height": size[1]})
                await page.goto(preview.url)
                await page.wait_for_load_state("networkidle")
                command = asyncio.create_task(
                    playground.you.slash(playground.channel, "imagine", prompt=PROMPT, sampler=SAMPLER)
                )
                if progress_out is not None:  # the live page mid-generation: progress edits arrive in real time
                    await asyncio.sleep(2.5)
                    await page.screenshot(path=str(progress_out))
                    print("progress:", progress_out, flush=True)
                result = await command
                embed = result.response.embeds[0] if result.response and result.response.embeds else None
                if embed is None:
                    raise SystemExit(f"/imagine gave no result embed: {result.response and result.response.content!r}")
                await wait_for_result(page, seconds=30)
                await page.wait_for_timeout(500)  # let the image's layout settle
                await page.screenshot(path=str(out))
                await browser.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="Chromium executable")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("playground.png"))
    parser.add_argument("--progress-out", type=Path, help="also capture the page while the image is being made")
    parser.add_argument("--size", type=int, nargs=2, default=(1000, 800), metavar=("WIDTH", "HEIGHT"))
    args = parser.parse_args()
    asyncio.run(main(args.chromium, args.out, args.progress_out, tuple(args.size)))
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")
