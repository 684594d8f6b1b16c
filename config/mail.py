"""A console email backend for the run command that prints each message's
plain-text body decoded, so a verification or invitation link can be copied
straight from the terminal (Django's console backend prints raw MIME, where
quoted-printable breaks long links)."""

import sys
import threading

from django.core.mail.backends.base import BaseEmailBackend


class ReadableConsoleBackend(BaseEmailBackend):
    _lock = threading.Lock()

    def send_messages(self, email_messages) -> int:
        with self._lock:
            for message in email_messages:
                rule = "-" * 72
                sys.stdout.write(
                    f"\n{rule}\nEMAIL to {', '.join(message.to)}\nSubject: {message.subject}\n"
                    f"{rule}\n{message.body}\n{rule}\n"
                )
            sys.stdout.flush()
        return len(email_messages)
