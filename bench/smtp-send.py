#!/usr/bin/python3
"""smtp-send.py - send a message set over SMTP on several connections at once.

usage: smtp-send.py PORT CONNECTIONS FILE...

Message N (the Nth FILE, in the order given) goes from bench-N@example.com
to rcpt-N@example.net, as it is on disk (line ends made CRLF, as SMTP
wants). CONNECTIONS threads share the list, each on its own connection to
127.0.0.1:PORT, so a server with that many processes is kept busy. The time
from the first connection to the last reply is the server's: a filter
such as amavisd answers only once it has passed the message on.

Prints one line: "sent N of M messages in S s: R msg/s" (and each refusal
on its own line); exit status 1 if any message was refused.
"""
import re
import smtplib
import sys
import threading
import time


def smtp_data(raw):
    data = re.sub(rb"\r\n|\r|\n", b"\r\n", raw)
    return data if data.endswith(b"\r\n") else data + b"\r\n"


def main():
    port, conns, files = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    messages = []
    for path in files:
        with open(path, "rb") as f:
            messages.append(smtp_data(f.read()))
    lock = threading.Lock()
    state = {"next": 0, "sent": 0, "refused": []}

    def worker():
        smtp = smtplib.SMTP("127.0.0.1", port, timeout=600)
        while True:
            with lock:
                n = state["next"]
                state["next"] += 1
            if n >= len(messages):
                break
            try:
                smtp.sendmail("bench-%d@example.com" % (n + 1), ["rcpt-%d@example.net" % (n + 1)],
                              messages[n], mail_options=["BODY=8BITMIME"])
                with lock:
                    state["sent"] += 1
            except smtplib.SMTPResponseException as e:
                with lock:
                    state["refused"].append("%s: %d %s" % (files[n], e.smtp_code,
                                                           e.smtp_error.decode(errors="replace")))
                smtp.rset()
        smtp.quit()

    start = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    secs = time.monotonic() - start
    for r in state["refused"]:
        print("refused: " + r)
    print("sent %d of %d messages in %.2f s: %.1f msg/s"
          % (state["sent"], len(messages), secs, state["sent"] / secs))
    return 1 if state["refused"] else 0


if __name__ == "__main__":
    sys.exit(main())
