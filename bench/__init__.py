"""`python -m bench`: the bot's benchmark (v1 poll policies, acknowledgement latency, capacity, progress edits).

Needs no network: it starts the local Prodia server (devtools.local_prodia) in a subprocess of its own, and runs
the bot under simcord (the simulated Discord) in another subprocess, so each one's CPU and memory are its own.
"""
