"""``[core] hostname_callable`` for the integration cluster: one host name per Celery worker.

Both workers run on this machine, so the real host name cannot tell them apart in
``task_instance.hostname``; each worker's environment names it (``CLARITY_IT_HOST``), the way
two machines would. The other components fall back to the machine's name.
"""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    return os.environ.get("CLARITY_IT_HOST") or socket.getfqdn()
