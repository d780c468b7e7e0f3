"""`shown`: text someone typed, made safe to show in a message or an embed (the e2e tests show it in place)."""

from __future__ import annotations

import pytest

from bot.render import shown


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("a red fox", "a red fox"),
        ("[a](x) [b](https://evil.example)", r"\[a\](x) \[b\](https://evil.example)"),  # every link, not the first
        ("[b](<https://evil.example>)", r"\[b\](\<https://evil.example\>)"),
        (
            "<@&123456789012345678> <@1> <#2> <t:3:R> @everyone @here",
            r"\<\@&123456789012345678\> \<\@1\> \<#2\> "
            r"\<t:3:R\> \@everyone \@here",
        ),
        ("**b** __u__ ~~s~~ ||spoiler|| `code`", r"\*\*b\*\* \_\_u\_\_ \~\~s\~\~ \|\|spoiler\|\| \`code\`"),
        ("# big\n-# small\n> quote\n1. one\n  - item", "\\# big\n\\-# small\n\\> quote\n1\\. one\n  \\- item"),
        ("a well-lit room #2", "a well-lit room #2"),  # only a line's start makes a heading or a list
        ("see https://example.com/a_b~c", "see https://example.com/a_b~c"),  # a link kept whole
        ("back\\slash", "back\\\\slash"),  # a typed backslash cannot undo an escape
    ],
)
def test_markup_is_escaped(typed: str, expected: str) -> None:
    assert shown(typed, 1024) == expected


def test_the_cut_never_splits_an_escape() -> None:
    assert shown("_" * 10, 6) == r"\_\_…"  # not "\_\_\…"
    assert shown("ab_" * 10, 6) == r"ab\_a…"
    assert shown("short", 5) == "short"
