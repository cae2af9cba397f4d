"""Watching the object GETs an S3 client sends, for tests and benchmarks that count or intercept them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit


def on_object_gets(client: Any, hook: Callable[[str], None]) -> None:
    """Call ``hook(key)`` before each object GET ``client`` sends, whichever way it is sent: botocore's
    ``get_object`` and ``pipeline.sources.s3``'s presigned GETs both go out through the client's HTTP
    session, and botocore's events fire for the first only. Path-style URLs (how ``make_client`` talks
    to a custom endpoint such as ``devtools.s3server``): ``/bucket/key``; a listing (``/bucket?list-type=2``)
    is not an object GET."""
    session = client._endpoint.http_session
    send = session.send

    def watched(request: Any) -> Any:
        if request.method == "GET":
            _, _, key = urlsplit(request.url).path.lstrip("/").partition("/")
            if key:
                hook(unquote(key))
        return send(request)

    session.send = watched
