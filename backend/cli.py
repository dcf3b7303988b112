"""The `prefaudit` command: run the app, its worker and migrations, manage users, score files."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from alembic import command
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from backend.db import alembic_config, session_scope
from backend.models import User
from backend.services.reaper import reap_once
from backend.services.users import create_user as create
from backend.services.users import get_user, issue_token
from backend.settings import get_settings
from backend.storage.queue import QUEUES

app = typer.Typer(
    help="prefaudit: audit preference datasets with influence functions.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def migrate(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Bring the database (DATABASE_URL, default SQLite under ./var) up to `revision`."""
    get_settings().data_dir.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(), revision)
    typer.echo(f"database at {revision}: {_safe_url()}")


def _safe_url() -> str:
    return make_url(get_settings().sqlalchemy_url).render_as_string(hide_password=True)


@app.command("create-user")
def create_user(
    username: str,
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, help="≥ 8 chars")
    ],
    admin: Annotated[bool, typer.Option(help="Give the account admin rights.")] = False,
) -> None:
    """Create an account that can log in to the UI and the API."""
    try:
        with session_scope() as session:
            create(session, username, password, is_admin=admin)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"created user {username!r}")


@app.command("create-token")
def create_token(
    username: str,
    name: Annotated[str, typer.Option(help="A label for the token.")] = "cli",
) -> None:
    """Print a new API token for `username` (send it as `Authorization: Bearer <token>`)."""
    try:
        with session_scope() as session:
            token = issue_token(session, get_user(session, username), name)
    except LookupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(token)


def _start_worker(concurrency: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "worker", "--concurrency", str(concurrency)],
        env=os.environ.copy(),
    )


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    with_worker: Annotated[
        bool, typer.Option(help="Also start a worker process (the embedded single-machine setup).")
    ] = False,
    workers: Annotated[int, typer.Option(help="API processes.")] = 1,
) -> None:
    """Serve the API and the UI (and optionally a worker next to them)."""
    import uvicorn  # the server: loaded only by the commands that serve

    worker = _start_worker(1) if with_worker else None
    if worker is not None:
        # uvicorn shuts down on SIGTERM and then raises it again with the handler it found: the
        # default one ended this process at once, before it stopped its worker, which then lost
        # its broker folder (the e2e stack removes it once this process ends) mid-shutdown.
        signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        uvicorn.run("backend.main:app", host=host, port=port, workers=workers, log_level="info")
    finally:
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Tasks run at once by this worker.")] = 1,
    loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "info",
    queues: Annotated[
        str,
        typer.Option(
            help="Queues to consume: prefaudit-gpu (training, gradients), "
            "prefaudit-cpu (reductions, scoring); both by default."
        ),
    ] = "",
    torch_threads: Annotated[
        int, typer.Option(help="Torch threads per task process (0: torch's default).")
    ] = 0,
) -> None:
    """Run a Celery worker for audit jobs (start one per GPU to scale out).

    Tasks run in a prefork child process: when a child dies mid-task (killed, out of memory) the
    parent rejects its task and the broker delivers it again at once. This process becomes the
    worker (`celery -A worker.celery_app worker`), so signals sent to it reach Celery itself.
    """
    if torch_threads > 0:
        os.environ["PREFAUDIT_TORCH_THREADS"] = str(torch_threads)
    argv = [sys.executable, "-m", "celery", "-A", "worker.celery_app:celery_app", "worker"]
    argv += [
        f"--concurrency={concurrency}",
        f"--loglevel={loglevel}",
        f"--queues={queues or ','.join(QUEUES)}",
        "--pool=prefork",
        "--without-gossip",
        "--without-mingle",
    ]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)


@app.command()
def reap() -> None:
    """One pass of the reaper: re-dispatch jobs whose tasks stopped beating or whose broker lost
    its messages (the API process runs this periodically; use it from cron without one)."""
    typer.echo(json.dumps(reap_once()))


@app.command()
def run(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Migrate, make sure an admin account exists, then serve the app with a worker."""
    migrate("head")
    with session_scope() as session:
        if (session.scalar(select(func.count()).select_from(User)) or 0) == 0:
            password = secrets.token_urlsafe(12)
            create(session, "admin", password, is_admin=True)
            credentials = get_settings().data_dir / "admin-credentials.txt"
            credentials.write_text(f"username: admin\npassword: {password}\n")
            credentials.chmod(0o600)
            typer.secho(
                f"\nCreated the first account. Log in at http://{host}:{port} with\n"
                f"  username: admin\n  password: {password}\n"
                f"(also saved in {credentials})\n",
                fg=typer.colors.GREEN,
            )
        else:
            typer.echo(f"Log in at http://{host}:{port} with an existing account.")
    serve(host=host, port=port, with_worker=True, workers=1)


@app.command()
def openapi(
    out: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
) -> None:
    """Print the OpenAPI document (the frontend's client is generated from it)."""
    from backend.main import create_app  # the whole API: loaded only to print its document

    text = json.dumps(create_app().openapi(), indent=2, sort_keys=True) + "\n"
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)
        typer.echo(f"wrote {out}")


def _register_engine_commands() -> None:
    from backend.score_command import score

    app.command("score")(score)


_register_engine_commands()

if __name__ == "__main__":
    app()
