"""A real SMTP server for the mail tests: aiosmtpd on 127.0.0.1:PORT, writing each
message it accepts to DIR as <n>.eml with an X-Envelope-To header. Prints "ready"."""
import os
import sys
import threading
import time

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, outdir):
        self.outdir = outdir

    async def handle_DATA(self, server, session, envelope):
        name = os.path.join(self.outdir, f"{time.time_ns()}.eml")
        header = ("X-Envelope-To: " + ",".join(envelope.rcpt_tos) + "\r\n").encode()
        with open(name + ".tmp", "wb") as f:
            f.write(header + envelope.original_content)
        os.rename(name + ".tmp", name)
        return "250 OK"


def main():
    port, outdir = int(sys.argv[1]), sys.argv[2]
    controller = Controller(Sink(outdir), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
