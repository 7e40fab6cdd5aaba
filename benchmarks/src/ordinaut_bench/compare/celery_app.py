"""The Celery app `bench compare` runs: one no-op task that returns when it started, Redis as
broker and result backend, every key under the prefix ``ORDINAUT_BENCH_CELERY_PREFIX``."""

from __future__ import annotations

import os
import time

from celery import Celery

URL_ENV, PREFIX_ENV = "ORDINAUT_BENCH_CELERY_REDIS", "ORDINAUT_BENCH_CELERY_PREFIX"


def make_app(redis_url: str, prefix: str) -> Celery:
    """Celery as its docs recommend for reliable work: late acknowledgement (a job is taken off
    the queue only once done) and requeueing on a lost worker; otherwise the defaults."""
    app = Celery("ordinaut_bench", broker=redis_url, backend=redis_url)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        broker_transport_options={"global_keyprefix": prefix},
        result_backend_transport_options={"global_keyprefix": prefix},
        broker_connection_retry_on_startup=True,
        result_expires=3600,
        worker_hijack_root_logger=False,
    )

    # One function for every app: Celery warns when a name is registered twice with two
    # different callables (the driver makes an app per run beside the module's own).
    app.task(name="noop")(noop)
    return app


def noop() -> float:
    """The job: nothing, but say when it started (Celery records only when jobs finish)."""
    return time.time()


# What `celery -A ordinaut_bench.compare.celery_app worker` loads.
app = make_app(os.environ.get(URL_ENV, "redis://127.0.0.1:6379/0"), os.environ.get(PREFIX_ENV, ""))
