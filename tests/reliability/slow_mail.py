"""An email backend for worker processes in fault tests: the file backend, slowed down.

``SLOW_MAIL_SECONDS`` (environment) is slept before each message, so a test can
kill a worker while it is in the middle of a batch of sends.
"""

import os
import time

from django.core.mail.backends.filebased import EmailBackend as FileEmailBackend


class EmailBackend(FileEmailBackend):
    def send_messages(self, email_messages):
        delay = float(os.environ.get("SLOW_MAIL_SECONDS", "0") or 0)
        sent = 0
        for message in email_messages:
            if delay:
                time.sleep(delay)
            sent += super().send_messages([message])
        return sent
