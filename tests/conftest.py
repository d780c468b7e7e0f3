"""Shared fixtures live in tests/plugins/ (tests/README.md says which); this file only registers them."""

pytest_plugins = ["tests.plugins.servers", "tests.plugins.databases", "tests.plugins.discord_world"]
