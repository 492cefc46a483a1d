"""Script a fake server running in another process (``python -m router_fakes``) over ``/_fake/*``."""

from __future__ import annotations

from types import TracebackType
from typing import Self

import httpx

from .script import ModelScript, RecordedRequest

__all__ = ["FakeProvidersClient"]


class FakeProvidersClient:
    """The HTTP twin of ``FakeProviders.script / reset / requests``, for a server in another process."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout)

    def script(self, *scripts: ModelScript) -> None:
        """Replace these models' scripts on the server."""
        response = self._http.post("/_fake/script", json=[s.to_json() for s in scripts])
        response.raise_for_status()

    def reset(self) -> None:
        self._http.post("/_fake/reset").raise_for_status()

    def requests(self, model: str | None = None) -> list[RecordedRequest]:
        """The server's request log (optionally one model's), oldest first."""
        params = {"model": model} if model is not None else {}
        response = self._http.get("/_fake/requests", params=params)
        response.raise_for_status()
        return [RecordedRequest.from_json(r) for r in response.json()["requests"]]

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
