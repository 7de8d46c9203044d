"""``judgealign serve``: an OpenAI-compatible endpoint on loopback for a judgealign model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from judgealign.cli.common import one_line_errors
from judgealign.errors import ConfigError


@one_line_errors
def serve(
    model: Annotated[
        str, typer.Option(help="provider:model to serve, e.g. local:fast or fake:constant.")
    ] = "local:default",
    embedder: Annotated[
        str | None, typer.Option(help="Embedder for /v1/embeddings, e.g. local or fake.")
    ] = "local",
    host: Annotated[str, typer.Option(help="Address to bind (keep it on loopback).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port; 0 picks a free one.")] = 8089,
    cache_dir: Annotated[
        Path | None, typer.Option(help="Response cache folder (reruns answer from it).")
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Model calls in flight at once.")] = 1,
    timeout: Annotated[float, typer.Option(help="Seconds allowed for one model call.")] = 900.0,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="JUDGEALIGN_SERVE_TOKEN",
            help="Bearer token every request must carry (required beyond 127.0.0.1).",
        ),
    ] = None,
) -> None:
    """Serve MODEL (and EMBEDDER) as /v1/chat/completions, /v1/embeddings and /v1/models.

    Example: judgealign serve --model local:fast --embedder local --port 8089
    """
    from judgealign.serve import ModelServer

    if host not in ("127.0.0.1", "localhost", "::1") and not token:
        raise ConfigError(
            f"--host {host}: beyond loopback every request must carry a token; "
            "pass --token (or JUDGEALIGN_SERVE_TOKEN), or bind to 127.0.0.1"
        )
    server = ModelServer(
        model,
        embedder or None,
        host=host,
        port=port,
        cache_dir=cache_dir,
        concurrency=concurrency,
        timeout=timeout,
        token=token,
    ).start()
    typer.echo(
        f"serving {server.model_name}"
        + (f" and {server.embedder_name}" if server.embedder_name else "")
        + f" at {server.base_url} (Ctrl-C to stop)",
    )
    server.serve_forever()
