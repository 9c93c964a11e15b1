"""``nascli webui``: serve the read-only web UI and JSON API until Ctrl-C."""

from __future__ import annotations

import signal
from pathlib import Path

import typer

from nascli.cli.boundary import cli_command, stdout_console


@cli_command
def webui(
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to bind; any non-loopback one requires a token."
    ),
    port: int = typer.Option(8080, "--port", "-p", min=0, max=65535, help="Port (0: any free)."),
    oneshot: list[Path] = typer.Option(
        [], "--oneshot", help="A one-shot run's log_dir, or a folder of them (repeatable)."
    ),
    open_browser: bool = typer.Option(False, "--open", help="Open the page in a browser."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log every request to stderr."),
) -> None:
    """Serve every experiment under $NASCLI_HOME (and one-shot run logs) as a read-only web page
    and JSON API (GET /api lists the routes), while managers run. Ctrl-C stops it."""
    from nascli.errors import UsageError
    from nascli.experiment.store import nascli_home
    from nascli.webui.server import make_server

    for root in oneshot:
        if not root.is_dir():
            raise UsageError(f"--oneshot: {str(root)!r} is not a directory")
    try:
        server = make_server(host, port, [r.resolve() for r in oneshot], verbose=verbose)
    except OSError as exc:
        raise UsageError(
            f"--host/--port: cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None
    url = server.url
    stdout_console.print(f"nascli web UI on {url}  (experiments in {nascli_home()}; Ctrl-C stops)")
    if server.access.token:
        stdout_console.print(
            "  not a loopback address: the token in this URL is required; it is printed only now"
        )
    # Ctrl-C and a polite kill both stop the server, even when the shell that started us
    # ignores SIGINT (a background job of a non-interactive shell inherits it ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        stdout_console.print("web UI stopped")
    finally:
        server.server_close()
