"""sink.py - an aiosmtpd handler that stores each message exactly as received.

Run as: PYTHONPATH=tests python3 -m aiosmtpd -n -l 127.0.0.1:PORT -c sink.RawSink DIR

DIR/N.eml holds the DATA bytes untouched (CRLF line ends), DIR/N.env the
envelope as JSON ({"mail_from": ..., "rcpt_tos": [...]}). Both are written
under a temporary name and renamed, .env last, so a reader that sees N.env
sees the whole message.
"""
import itertools
import json
import os


class RawSink:
    def __init__(self, directory):
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        self.counter = itertools.count(1)

    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 1:
            parser.error("sink.RawSink takes one argument: the directory")
        return cls(args[0])

    def _write(self, name, data):
        tmp = os.path.join(self.directory, "." + name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, os.path.join(self.directory, name))

    async def handle_DATA(self, server, session, envelope):
        n = next(self.counter)
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        self._write("%d.eml" % n, content)
        env = {"mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos),
               "mail_options": list(envelope.mail_options),
               "rcpt_options": list(getattr(envelope, "rcpt_options", []))}
        self._write("%d.env" % n, json.dumps(env).encode())
        return "250 OK"
