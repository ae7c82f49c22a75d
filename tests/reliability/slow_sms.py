"""An SMS backend for worker processes in fault tests: the console backend, slowed down.

``SLOW_SMS_SECONDS`` (environment) is slept before each message, so a test can kill a
worker while it is in the middle of a batch of sends. Each SMS is one line in the
worker's log: ``SMS to <number> [<reference>]: <body>``.
"""

import os
import time

from nurturing.channels import ConsoleSMSBackend


class SlowSMSBackend(ConsoleSMSBackend):
    def send(self, *, to: str, body: str, reference: str) -> str:
        time.sleep(float(os.environ.get("SLOW_SMS_SECONDS", "0") or 0))
        return super().send(to=to, body=body, reference=reference)
