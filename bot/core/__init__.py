"""The Discord-free core: the request and its validation, the model catalog, the Prodia clients, job
admission limits, the store, images, errors and the catalogue of user-facing text.

Nothing here imports discord (a ruff rule, TID251, enforces it); `bot/` around it turns jobs into
Discord messages, and `cogs/` holds the commands."""
