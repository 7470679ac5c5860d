#!/usr/bin/python3
"""sink-count.py - an SMTP server that takes every message and counts it.

usage: sink-count.py PORT COUNTFILE

Listens on 127.0.0.1:PORT until SIGTERM, accepts any message and appends
one line per message to COUNTFILE. Unlike aiosmtpd's default server it
takes lines of any length up to 1 MB, as MTAs do in practice, so that a
filter in front of it is never refused for a message the incoming MTA took.
"""
import signal
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP


class LongLineSMTP(SMTP):
    line_length_limit = 1 << 20


class CountingHandler:
    def __init__(self, path):
        self.out = open(path, "a", buffering=1)

    async def handle_DATA(self, server, session, envelope):
        self.out.write("%s %d\n" % (envelope.mail_from, len(envelope.original_content or b"")))
        return "250 OK"


class LongLineController(Controller):
    def factory(self):
        return LongLineSMTP(self.handler, **self.SMTP_kwargs)


def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    controller = LongLineController(CountingHandler(path), hostname="127.0.0.1", port=port,
                                    data_size_limit=None)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    controller.start()
    done.wait()
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
