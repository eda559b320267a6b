"""The SMTP sink `make run` starts keeps every email as a file and says so on one line."""

import smtplib
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

from mwolo.core.testing.mqtt import free_port, wait_for_port
from sandbox.smtp import SmtpSink

ROOT = Path(__file__).resolve().parents[2]


def _email(subject: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "noreply@mwolo.cd"
    message["To"] = "client@example.cd"
    message["Subject"] = subject
    message.set_content("Bonjour,\nvotre facture est jointe.")
    message.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="f.pdf")
    return message


def test_the_sink_started_as_make_run_does_keeps_each_email(tmp_path):
    port = free_port()
    folder = tmp_path / "mail"
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox.smtp", "--port", str(port), "--folder", str(folder)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_port("127.0.0.1", port)
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.send_message(_email("Votre facture FA-2026-000123"))
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=15)

    [stored] = folder.glob("*.eml")
    assert b"Votre facture FA-2026-000123" in stored.read_bytes()
    assert "mail to client@example.cd: Votre facture FA-2026-000123 + f.pdf" in output
    assert process.returncode == 0


def test_messages_read_back_in_arrival_order_with_their_attachments(tmp_path):
    sink = SmtpSink(folder=tmp_path, quiet=True).start()
    try:
        with smtplib.SMTP(sink.host, sink.port, timeout=10) as smtp:
            smtp.send_message(_email("premier"))
            smtp.send_message(_email("second"))
        received = sink.messages()
    finally:
        sink.stop()

    assert [m["Subject"] for m in received] == ["premier", "second"]
    [attachment] = received[0].iter_attachments()
    assert attachment.get_content() == b"%PDF-1.4"
    assert list(tmp_path.glob("*.part")) == []
