"""A finished job sends exactly one e-mail, through a real (local) SMTP server."""

from __future__ import annotations

import pytest
from aiosmtpd.controller import Controller

from store.jobs import get_job
from tests.services import free_port, wait_until
from tests.stack import submit, wait_for_status
from tests.worker.conftest import fresh_stack
from worker.tasks import NOTIFY_JOB_FINISHED


class Inbox:
    def __init__(self) -> None:
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield inbox, f"smtp://127.0.0.1:{controller.port}"
    controller.stop()


def test_a_finished_job_sends_exactly_one_mail(postgres_admin_url, private_redis, tmp_path, smtp, porcine_csv):
    inbox, smtp_url = smtp
    with fresh_stack(
        postgres_admin_url,
        private_redis.url,
        tmp_path,
        label="mail",
        smtp_url=smtp_url,
        mail_from="rt-check@lab.example",
        public_url="https://rt.lab.example",
    ) as stack:
        job_id = submit(stack.live.url, porcine_csv.read_bytes(), notify_email="analyst@lab.example").json()["id"]
        assert wait_for_status(stack.live.url, job_id)["status"] == "succeeded"
        assert wait_until(lambda: len(inbox.messages) >= 1, 30)
        # A second notification task for the same job (a redelivery) must not mail again.
        assert stack.celery.send_task(NOTIFY_JOB_FINISHED, args=[job_id]).get(timeout=30) is False
        quiet = submit(stack.live.url, porcine_csv.read_bytes()).json()["id"]  # nobody to notify
        wait_for_status(stack.live.url, quiet)
        wait_until(lambda: False, 2)
        assert len(inbox.messages) == 1
        mail = inbox.messages[0]
        assert mail.rcpt_tos == ["analyst@lab.example"] and mail.mail_from == "rt-check@lab.example"
        body = mail.content.decode()
        assert job_id in body and f"https://rt.lab.example/jobs/{job_id}" in body
        # Plain text only: nothing a file name or a cell could smuggle markup into
        assert "Content-Type: text/plain" in body and "text/html" not in body
        assert get_job(stack.db, job_id).notified_at is not None
