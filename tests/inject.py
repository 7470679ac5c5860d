#!/usr/bin/python3
"""inject.py - send test messages over SMTP and record what was sent.

usage: inject.py PORT OUTDIR [--first N] SPEC...

Each SPEC is "kind:path" (kind: clean, infected, removed for a message whose
content the policy must remove without a signature match, or held for one
that must be held; path: an RFC 5322 file), "attach:path" (a message is
built around that file as a base64 attachment: infected), or "eicar:" (an attachment holding the EICAR test string, built
here so that the string is never stored in the tree). Message N is sent
with envelope sender test-N@example.com; every 10th has three recipients,
one of them 200 characters long. OUTDIR/manifest.tsv lists
N, kind, source, recipients (appended to, so that
several runs with different --first numbers share one manifest); OUTDIR/sent/N.eml holds the exact bytes sent.
"""
import email.mime.application
import email.mime.multipart
import email.mime.text
import os
import re
import smtplib
import sys


def eicar():
    return (b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!" + b"$H+H*")


def with_attachment(name, data, n):
    msg = email.mime.multipart.MIMEMultipart()
    msg["Subject"] = "attachment test %d: %s" % (n, name)
    msg["From"] = "test-%d@example.com" % n
    msg["To"] = "rcpt-%d@example.net" % n
    msg["Message-ID"] = "<attach-%d@mqscan.test>" % n
    msg.attach(email.mime.text.MIMEText("Please find the file attached.\n"))
    part = email.mime.application.MIMEApplication(data, Name=name)
    part["Content-Disposition"] = 'attachment; filename="%s"' % name
    msg.attach(part)
    return msg.as_bytes()


def smtp_data(raw):
    # SMTP wants CRLF everywhere; sendmail refuses bare LF and bare CR.
    data = re.sub(rb"\r\n|\r|\n", b"\r\n", raw)
    # smtplib ends DATA with CRLF "." CRLF, adding the CRLF if missing.
    return data if data.endswith(b"\r\n") else data + b"\r\n"


def main():
    port = int(sys.argv[1])
    outdir = sys.argv[2]
    args = sys.argv[3:]
    first = 1
    if args[:1] == ["--first"]:
        first = int(args[1])
        args = args[2:]
    os.makedirs(os.path.join(outdir, "sent"), exist_ok=True)
    long_rcpt = "l" * 180 + ".long-address@example.org"
    smtp = smtplib.SMTP("127.0.0.1", port)
    with open(os.path.join(outdir, "manifest.tsv"), "a") as manifest:
        for n, spec in enumerate(args, first):
            kind, _, path = spec.partition(":")
            if kind == "attach":
                with open(path, "rb") as f:
                    raw = with_attachment(os.path.basename(path), f.read(), n)
                kind = "infected"
            elif kind == "eicar":
                raw = with_attachment("eicar.com", eicar(), n)
                kind, path = "infected", "eicar"
            else:
                with open(path, "rb") as f:
                    raw = f.read()
            if n % 7 == 0:
                # An outsider trying to pre-stamp a message as scanned.
                raw = b"X-mqscan: clean, scanned by a forger\n" + raw
            data = smtp_data(raw)
            rcpts = ["rcpt-%d@example.net" % n]
            if n % 10 == 0:
                rcpts += ["second-%d@example.org" % n, long_rcpt]
            try:
                smtp.sendmail("test-%d@example.com" % n, rcpts, data,
                              mail_options=["BODY=8BITMIME"])
            except smtplib.SMTPResponseException as e:
                # Refused by the incoming sendmail: never reached mqscan.
                print("inject: message %d (%s) refused: %d %s"
                      % (n, path, e.smtp_code, e.smtp_error.decode(errors="replace")))
                smtp.rset()
                continue
            with open(os.path.join(outdir, "sent", "%d.eml" % n), "wb") as f:
                f.write(data)
            manifest.write("%d\t%s\t%s\t%s\n" % (n, kind, path, ",".join(rcpts)))
    smtp.quit()


if __name__ == "__main__":
    main()
