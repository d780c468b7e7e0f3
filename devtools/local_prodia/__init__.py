"""A local Prodia-compatible server on 127.0.0.1, for tests, the benchmark and trying the bot keyless.

It speaks Prodia v1 (submit + poll, ``X-Prodia-Key``) and v2 (``Authorization: Bearer``; the
synchronous ``POST /v2/job`` and the async ``/v2/job/async`` endpoints), makes real deterministic images
with Pillow, and misbehaves on demand through :class:`Fault`. Prodia's own clients (npm ``prodia`` v1 and
v2, ``prodiapy``) run against it in the test suite, so it answers in the live API's shapes as far as
the evidence goes; what is confirmed and what is our pick is said in each module's docstring:
``v1`` (submit, poll, lists), ``v2`` (sync and async jobs, errors, price) and ``schemas`` (the job types
and their config schemas). ``server`` holds the core (lifecycle, recorded requests, jobs), ``faults`` the
faults on demand, ``control`` the ``/_control/`` API and ``drawing`` the images.

Run it standalone with ``python -m devtools.local_prodia --help``.
"""

from .faults import FAULT_KINDS, Fault
from .schemas import JOB_TYPES, JobType
from .server import Job, LocalProdia, RecordedRequest

__all__ = ["FAULT_KINDS", "JOB_TYPES", "Fault", "Job", "JobType", "LocalProdia", "RecordedRequest"]
