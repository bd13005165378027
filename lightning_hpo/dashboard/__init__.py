"""A live, read-only web view of the studies in a storage: ``lightning-hpo dashboard``.

Needs the ``dashboard`` extra (``pip install 'lightning-hpo[dashboard]'``: Starlette, uvicorn and
plotly, whose bundled plotly.js the pages load, so it works offline). Imported only by the
``dashboard`` subcommand: ``import lightning_hpo`` stays cheap.

Example (not run: it serves until stopped):
    >>> from lightning_hpo.dashboard import serve  # doctest: +SKIP
    >>> serve("lightning_hpo_runs/studies.db", port=8080)  # doctest: +SKIP
"""

from __future__ import annotations

import sys

import uvicorn

from lightning_hpo.dashboard.app import create_app
from lightning_hpo.storage import Storage

__all__ = ["create_app", "serve", "is_local_host"]


def is_local_host(host: str) -> bool:
    """Whether ``host`` is a loopback address, reachable from this machine only."""
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


def serve(storage: Storage, *, host: str = "127.0.0.1", port: int = 8080, token: str | None = None) -> None:
    """Serve the dashboard of ``storage`` on ``host:port`` until interrupted."""
    if not is_local_host(host):
        print(
            f"lightning-hpo dashboard: warning: bound to {host}, so anyone who can reach this machine on port "
            f"{port} can read these studies (names, parameters, errors, paths)"
            + ("." if token else "; pass --token to require a secret.")
            + " See SECURITY.md.",
            file=sys.stderr,
        )
    url_host = "localhost" if host in ("127.0.0.1", "::1") else host
    query = f"/?token={token}" if token else "/"
    print(f"lightning-hpo dashboard of {storage.display_url}: http://{url_host}:{port}{query}", flush=True)
    # Any Host header is accepted when bound elsewhere: the machine's own names are not known here.
    allowed = None if is_local_host(host) else ["*"]
    uvicorn.run(create_app(storage, token=token, allowed_hosts=allowed), host=host, port=port, log_level="warning")
