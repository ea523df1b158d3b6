"""The Celery application: one task that runs the refresh job for a credential id.

Broker and result backend: ``REFAPP_BROKER_URL`` (default ``redis://127.0.0.1:6379/0``) and
``REFAPP_RESULT_BACKEND`` (default: the broker). The queue: ``REFAPP_QUEUE`` (default ``refapp``).
Start a worker with ``python -m refapp worker`` (or ``celery -A refapp.tasks worker``).
"""

import os

from celery import Celery

from refapp import job

BROKER_URL = os.environ.get("REFAPP_BROKER_URL", "redis://127.0.0.1:6379/0")

app = Celery(
    "refapp",
    broker=BROKER_URL,
    backend=os.environ.get("REFAPP_RESULT_BACKEND", BROKER_URL),
)
app.conf.update(
    task_default_queue=os.environ.get("REFAPP_QUEUE", "refapp"),
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_expires=3600,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="refapp.refresh_credential")
def refresh_credential(credential_id, endpoints=None, variant=None):
    """Runs the job; the endpoints and variant default to the worker's own environment."""
    return dict(job.run(credential_id, endpoints=endpoints, variant=variant))
