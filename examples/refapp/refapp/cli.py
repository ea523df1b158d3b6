"""``python -m refapp COMMAND``: the application's command line.

    init-db                          create the credentials table (idempotent)
    seed --user-id N --type T --name NAME   insert a credential, its JSON on stdin; prints the id
    refresh [--credential-id ID]     run the refresh job once, here (no Celery)
    show [--credential-id ID]        the row's status and expiry (no secret)
    worker [--concurrency N]         a Celery worker (threads pool) for the job
    enqueue --credential-ids 1,2 --jobs M   send M jobs round-robin, wait for every result
    run-jobs --workers N --credential-ids 1,2 --jobs M   start a worker, enqueue, wait, stop it

``refresh``, ``enqueue`` and ``run-jobs`` print one JSON summary on stdout and exit 0 when every
job's outcome is ``ok``, 3 when (every failed job's outcome is that) the user must reconnect,
1 otherwise; 2 for bad input or configuration.
"""

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter

from refapp import job
from refapp.db import STATUS_NEEDS_RECONNECT, ConfigError, Database
from refapp.sealing import decrypt_credential, encrypt_credential

SEED_FIELDS = ("access_token", "refresh_token", "expiry", "client_id", "client_secret", "scopes")


def _credential_id(args):
    value = args.credential_id or os.environ.get("OAUTHTEST_CREDENTIAL_ID")
    if not value:
        raise ConfigError("--credential-id (or OAUTHTEST_CREDENTIAL_ID) is required")
    if not value.isdigit():
        raise ConfigError("--credential-id: expected a row id (digits), got another value")
    return value


def _ids(text):
    ids = [part.strip() for part in text.split(",") if part.strip()]
    if not ids or not all(i.isdigit() for i in ids):
        raise ConfigError("--credential-ids: expected row ids separated by commas")
    return ids


def _exit_for(outcomes):
    if all(o == "ok" for o in outcomes):
        return 0
    if all(o in ("ok", "needs_reconnect") for o in outcomes):
        return job.EXIT["needs_reconnect"]
    return 1


def cmd_init_db(args):
    db = Database()
    db.init_schema()
    db.close()
    print("credentials table ready")
    return 0


def cmd_seed(args):
    try:
        data = json.load(sys.stdin)
    except ValueError:
        raise ConfigError("seed: stdin is not JSON")
    if not isinstance(data, dict) or not data.get("refresh_token"):
        raise ConfigError("seed: stdin must be a JSON object with at least refresh_token")
    unknown = sorted(set(data) - set(SEED_FIELDS))
    if unknown:
        raise ConfigError(f"seed: unknown field(s) {', '.join(unknown)}")
    db = Database()
    new_id = db.insert(args.user_id, args.type, args.name, encrypt_credential(data))
    db.close()
    print(new_id)
    return 0


def cmd_refresh(args):
    summary = job.run(_credential_id(args), variant=args.variant)
    print(json.dumps(summary))
    return _exit_for([summary["outcome"]])


def cmd_show(args):
    db = Database()
    row = db.load(_credential_id(args))
    db.close()
    if row is None:
        print(json.dumps({"found": False}))
        return 1
    payload = decrypt_credential(row.encrypted_data)
    print(
        json.dumps(
            {
                "id": str(row.id),
                "status": row.status,
                "expiry": payload.get("expiry"),
                "has_access_token": bool(payload.get("access_token")),
                "has_refresh_token": bool(payload.get("refresh_token")),
                "updated_at": str(row.updated_at),
            }
        )
    )
    return 0


def _worker_argv(concurrency, queue):
    return [
        sys.executable, "-m", "celery", "-A", "refapp.tasks", "worker",
        "--pool", os.environ.get("REFAPP_POOL", "threads"),
        "--concurrency", str(concurrency),
        "--queues", queue,
        "--hostname", f"refapp-{uuid.uuid4().hex[:8]}@%h",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
        "--loglevel", os.environ.get("REFAPP_LOGLEVEL", "warning"),
    ]


def _worker_env():
    """This environment, with the package importable by ``celery -A refapp.tasks``."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
    return env


def cmd_worker(args):
    argv = _worker_argv(args.concurrency, args.queue)
    os.execve(argv[0], argv, _worker_env())


def _expired(ids, endpoints):
    """Whether every row's access token is due for a refresh (or the row cannot be refreshed:
    gone, or waiting for the user to reconnect), by the job's own test (``job.fresh``)."""
    db = Database()
    try:
        for credential_id in ids:
            row = db.load(credential_id)
            if row is None or row.status == STATUS_NEEDS_RECONNECT:
                continue
            payload = decrypt_credential(row.encrypted_data)
            if job.fresh(job.credentials(payload, endpoints["OAUTHTEST_TOKEN_URL"])):
                return False
        return True
    finally:
        db.close()


def _enqueue(ids, jobs, queue, timeout, variant, worker=None, rounds=1):
    """Sends the jobs and waits for each; ``worker`` (a Popen) dying ends the wait early.

    ``rounds`` > 1: the jobs go in that many rounds, each sent once the previous one's results
    are in and every row's access token has expired again, so that the run meets ``rounds``
    expiries however fast or slow the machine is."""
    import gc

    from celery.exceptions import TimeoutError as NotYet

    from refapp.tasks import refresh_credential

    endpoints = job.endpoints_from_env()
    deadline = time.monotonic() + timeout
    outcomes = []
    sent_so_far = 0
    for r in range(rounds):
        this_round = jobs * (r + 1) // rounds - sent_so_far
        if r > 0:
            while not _expired(ids, endpoints) and time.monotonic() < deadline:
                if worker is not None and worker.poll() is not None:
                    break
                time.sleep(0.05)
        sent = [
            refresh_credential.apply_async(
                args=[ids[(sent_so_far + n) % len(ids)]],
                kwargs={"endpoints": endpoints, "variant": variant},
                queue=queue,
            )
            for n in range(this_round)
        ]
        sent_so_far += this_round
        outcomes.extend(_wait(sent, deadline, timeout, worker, NotYet))
        # Results let go of their subscriptions now, not while the interpreter shuts down.
        sent.clear()
        gc.collect()
    summary = {
        "jobs": jobs,
        "credentials": len(ids),
        "queue": queue,
        "outcomes": dict(Counter(outcomes)),
        "ok": sum(o == "ok" for o in outcomes),
    }
    print(json.dumps(summary))
    return _exit_for(outcomes)


def _wait(sent, deadline, timeout, worker, NotYet):
    """Each result's outcome, in order."""
    outcomes = []
    for result in sent:
        outcome = None
        while outcome is None:
            if worker is not None and worker.poll() is not None:
                outcome = f"error: the worker exited with status {worker.returncode}"
            elif time.monotonic() > deadline:
                outcome = f"error: no result within {timeout:g} s"
            else:
                try:
                    outcome = result.get(timeout=0.5)["outcome"]
                except NotYet:
                    continue
                except Exception as exc:  # the job raised
                    outcome = f"error: {type(exc).__name__}"
        outcomes.append(outcome)
    return outcomes


def cmd_enqueue(args):
    return _enqueue(
        _ids(args.credential_ids), args.jobs, args.queue, args.timeout, args.variant,
        rounds=args.rounds,
    )


def cmd_run_jobs(args):
    ids = _ids(args.credential_ids)
    workers = args.workers or int(os.environ.get("OAUTHTEST_WORKERS", "4"))
    queue = args.queue or f"refapp-{uuid.uuid4().hex[:12]}"
    worker = subprocess.Popen(
        _worker_argv(workers, queue),
        stdin=subprocess.DEVNULL,
        stdout=sys.stderr,  # its banner and logs; stdout is the summary's
        env=_worker_env(),
    )
    try:
        return _enqueue(ids, args.jobs, queue, args.timeout, args.variant, worker, args.rounds)
    finally:
        worker.terminate()  # warm shutdown: running jobs finish
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def parser():
    p = argparse.ArgumentParser(prog="refapp", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("init-db", help="create the credentials table").set_defaults(run=cmd_init_db)

    seed = sub.add_parser("seed", help="insert a credential (JSON on stdin)")
    seed.add_argument("--user-id", type=int, default=1)
    seed.add_argument("--type", default="gmailOAuth2")
    seed.add_argument("--name", default="Test Gmail")
    seed.set_defaults(run=cmd_seed)

    for name, run, helptext in (
        ("refresh", cmd_refresh, "run the refresh job once, without Celery"),
        ("show", cmd_show, "the row's status and expiry"),
    ):
        one = sub.add_parser(name, help=helptext)
        one.add_argument("--credential-id", help="default: OAUTHTEST_CREDENTIAL_ID")
        if name == "refresh":
            one.add_argument("--variant", choices=job.VARIANTS, help="default: REFAPP_VARIANT")
        one.set_defaults(run=run)

    worker = sub.add_parser("worker", help="run a Celery worker")
    worker.add_argument("--concurrency", type=int, default=12)
    worker.add_argument("--queue", default=os.environ.get("REFAPP_QUEUE", "refapp"))
    worker.set_defaults(run=cmd_worker)

    for name, run in (("enqueue", cmd_enqueue), ("run-jobs", cmd_run_jobs)):
        many = sub.add_parser(name, help="send jobs to Celery workers and wait for them")
        many.add_argument("--credential-ids", required=True, help="row ids, comma-separated")
        many.add_argument("--jobs", type=int, default=None, help="default: one per id")
        many.add_argument("--timeout", type=float, default=120.0, help="seconds for all jobs")
        many.add_argument("--variant", choices=job.VARIANTS, help="default: the worker's")
        many.add_argument("--rounds", type=int, default=1,
                          help="send the jobs in R rounds, each once every token has expired")
        if name == "enqueue":
            many.add_argument("--queue", default=os.environ.get("REFAPP_QUEUE", "refapp"))
        else:
            many.add_argument("--queue", default=None, help="default: a fresh one for this run")
            many.add_argument("--workers", type=int, default=None,
                              help="worker threads; default OAUTHTEST_WORKERS, else 4")
        many.set_defaults(run=run)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        if getattr(args, "jobs", 0) is None:
            args.jobs = len(_ids(args.credential_ids))
        if getattr(args, "jobs", 1) < 1 or getattr(args, "workers", None) in (0,):
            raise ConfigError("--jobs and --workers: expected at least 1")
        if not 1 <= getattr(args, "rounds", 1) <= getattr(args, "jobs", 1):
            raise ConfigError("--rounds: expected from 1 to --jobs")
        return args.run(args)
    except ConfigError as exc:
        print(f"refapp: error: {exc}", file=sys.stderr)
        return 2
