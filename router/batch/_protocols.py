"""The three batch APIs on the wire, over httpx: submit a group of lines, poll it, cancel it.

Direct HTTP rather than litellm: litellm's batch support covers OpenAI's Files+Batches shape for
some providers and not others (Anthropic's Message Batches and Gemini's inline batch mode are not
translated per line), and each API here is three or four plain JSON calls (docs/batch.md).
Every answer comes back as an openai ChatCompletion (``_translate``) or an openai-style error.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from providers.base import Deployment
from router.batch._translate import from_anthropic, from_gemini, to_anthropic, to_gemini

_ANTHROPIC_BASE = "https://api.anthropic.com"
_GEMINI_BASE = "https://generativelanguage.googleapis.com/v1beta"
_ANTHROPIC_VERSION = "2023-06-01"


class BatchAPIError(Exception):
    """A provider refused a batch call (submission, poll, cancel): the group is retried or failed."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """One line's answer: a ChatCompletion dict, or an openai-style error object."""

    key: str
    completion: Mapping[str, Any] | None = None
    error: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Poll:
    ended: bool
    outcomes: tuple[Outcome, ...] = ()


class BatchProtocol(Protocol):
    def submit(
        self,
        deployment: Deployment,
        group_id: str,
        items: Sequence[tuple[str, Mapping[str, Any]]],
        max_output_tokens: int | None,
    ) -> str: ...

    def poll(self, deployment: Deployment, provider_id: str, model_name: str) -> Poll: ...

    def cancel(self, deployment: Deployment, provider_id: str) -> None: ...

    def find(self, deployment: Deployment, group_id: str) -> str | None:
        """The provider's id of the batch submitted for ``group_id``, if the provider has one and
        can be asked (None: not found, or the API records nothing of ours to look for)."""
        ...


def _check(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:
        raise BatchAPIError(
            f"{response.request.method} {response.request.url.path}: "
            f"HTTP {response.status_code} {response.text[:300]}"
        )
    return response


def _error(code: str, message: str, status: int | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, **({"status": status} if status is not None else {})}


class OpenAIBatches:
    """Files upload + ``/batches``; one model per batch, as OpenAI requires."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    @staticmethod
    def _base(deployment: Deployment) -> str:
        return (deployment.api_base or "https://api.openai.com/v1").rstrip("/")

    @staticmethod
    def _headers(deployment: Deployment) -> dict[str, str]:
        return {**deployment.headers, "authorization": f"Bearer {deployment.api_key or ''}"}

    def submit(
        self,
        deployment: Deployment,
        group_id: str,
        items: Sequence[tuple[str, Mapping[str, Any]]],
        max_output_tokens: int | None,
    ) -> str:
        base, headers = self._base(deployment), self._headers(deployment)
        lines = [
            {
                "custom_id": key,
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {**body, "model": deployment.model},
            }
            for key, body in items
        ]
        data = "".join(json.dumps(line) + "\n" for line in lines).encode()
        uploaded = _check(
            self.http.post(
                f"{base}/files",
                headers=headers,
                data={"purpose": "batch"},
                files={"file": (f"{group_id}.jsonl", data, "application/jsonl")},
            )
        )
        created = _check(
            self.http.post(
                f"{base}/batches",
                headers=headers,
                json={
                    "input_file_id": uploaded.json()["id"],
                    "endpoint": "/v1/chat/completions",
                    "completion_window": "24h",
                    "metadata": {"router_group": group_id},
                },
            )
        )
        return str(created.json()["id"])

    def poll(self, deployment: Deployment, provider_id: str, model_name: str) -> Poll:
        base, headers = self._base(deployment), self._headers(deployment)
        batch = _check(self.http.get(f"{base}/batches/{provider_id}", headers=headers)).json()
        if batch["status"] not in ("completed", "expired", "cancelled", "failed"):
            return Poll(False)
        outcomes: list[Outcome] = []
        for file_key in ("output_file_id", "error_file_id"):
            file_id = batch.get(file_key)
            if not file_id:
                continue
            text = _check(self.http.get(f"{base}/files/{file_id}/content", headers=headers)).text
            for raw in text.splitlines():
                if not raw.strip():
                    continue
                line = json.loads(raw)
                response = line.get("response") or {}
                if response.get("status_code") == 200:
                    body = {**response["body"], "model": model_name}
                    outcomes.append(Outcome(line["custom_id"], completion=body))
                elif line.get("error"):
                    outcomes.append(Outcome(line["custom_id"], error=line["error"]))
                else:
                    inner = (response.get("body") or {}).get("error") or {}
                    outcomes.append(
                        Outcome(
                            line["custom_id"],
                            error=_error(
                                str(inner.get("code") or inner.get("type") or "error"),
                                str(inner.get("message", "")),
                                response.get("status_code"),
                            ),
                        )
                    )
        return Poll(True, tuple(outcomes))

    def cancel(self, deployment: Deployment, provider_id: str) -> None:
        _check(
            self.http.post(
                f"{self._base(deployment)}/batches/{provider_id}/cancel", headers=self._headers(deployment)
            )
        )

    def find(self, deployment: Deployment, group_id: str) -> str | None:
        # Newest first: a batch lost to a crash is among the latest.
        listed = _check(
            self.http.get(
                f"{self._base(deployment)}/batches", headers=self._headers(deployment), params={"limit": 100}
            )
        ).json()
        for batch in listed.get("data") or ():
            if (batch.get("metadata") or {}).get("router_group") == group_id:
                return str(batch["id"])
        return None


class AnthropicBatches:
    """Message Batches: inline ``requests[{custom_id, params}]``, results as JSONL."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    @staticmethod
    def _base(deployment: Deployment) -> str:
        return (deployment.api_base or _ANTHROPIC_BASE).rstrip("/")

    @staticmethod
    def _headers(deployment: Deployment) -> dict[str, str]:
        return {
            **deployment.headers,
            "x-api-key": deployment.api_key or "",
            "anthropic-version": _ANTHROPIC_VERSION,
        }

    def submit(
        self,
        deployment: Deployment,
        group_id: str,
        items: Sequence[tuple[str, Mapping[str, Any]]],
        max_output_tokens: int | None,
    ) -> str:
        requests = [
            {"custom_id": key, "params": to_anthropic(body, deployment.model, max_output_tokens)}
            for key, body in items
        ]
        created = _check(
            self.http.post(
                f"{self._base(deployment)}/v1/messages/batches",
                headers=self._headers(deployment),
                json={"requests": requests},
            )
        )
        return str(created.json()["id"])

    def poll(self, deployment: Deployment, provider_id: str, model_name: str) -> Poll:
        base, headers = self._base(deployment), self._headers(deployment)
        batch = _check(self.http.get(f"{base}/v1/messages/batches/{provider_id}", headers=headers)).json()
        if batch["processing_status"] != "ended":
            return Poll(False)
        url = batch.get("results_url") or f"{base}/v1/messages/batches/{provider_id}/results"
        text = _check(self.http.get(url, headers=headers)).text
        created = int(time.time())
        outcomes: list[Outcome] = []
        for raw in text.splitlines():
            if not raw.strip():
                continue
            line = json.loads(raw)
            result = line.get("result") or {}
            kind = result.get("type")
            if kind == "succeeded":
                outcomes.append(
                    Outcome(
                        line["custom_id"], completion=from_anthropic(result["message"], model_name, created)
                    )
                )
            elif kind == "errored":
                inner = (result.get("error") or {}).get("error") or {}
                outcomes.append(
                    Outcome(
                        line["custom_id"],
                        error=_error(str(inner.get("type", "error")), str(inner.get("message", ""))),
                    )
                )
            else:
                outcomes.append(
                    Outcome(
                        line["custom_id"],
                        error=_error(f"batch_{kind}", f"The provider reported the line {kind}."),
                    )
                )
        return Poll(True, tuple(outcomes))

    def cancel(self, deployment: Deployment, provider_id: str) -> None:
        _check(
            self.http.post(
                f"{self._base(deployment)}/v1/messages/batches/{provider_id}/cancel",
                headers=self._headers(deployment),
            )
        )

    def find(self, deployment: Deployment, group_id: str) -> str | None:
        return None  # a message batch carries nothing of ours to look for: the group is sent again


class GeminiBatches:
    """Batch mode with inline requests: ``models/{model}:batchGenerateContent``, an operation to poll."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    @staticmethod
    def _base(deployment: Deployment) -> str:
        return (deployment.api_base or _GEMINI_BASE).rstrip("/")

    @staticmethod
    def _headers(deployment: Deployment) -> dict[str, str]:
        return {**deployment.headers, "x-goog-api-key": deployment.api_key or ""}

    def submit(
        self,
        deployment: Deployment,
        group_id: str,
        items: Sequence[tuple[str, Mapping[str, Any]]],
        max_output_tokens: int | None,
    ) -> str:
        inline = [{"request": to_gemini(body), "metadata": {"key": key}} for key, body in items]
        body = {"batch": {"display_name": group_id, "input_config": {"requests": {"requests": inline}}}}
        created = _check(
            self.http.post(
                f"{self._base(deployment)}/models/{deployment.model}:batchGenerateContent",
                headers=self._headers(deployment),
                json=body,
            )
        )
        return str(created.json()["name"])

    def poll(self, deployment: Deployment, provider_id: str, model_name: str) -> Poll:
        operation = _check(
            self.http.get(f"{self._base(deployment)}/{provider_id}", headers=self._headers(deployment))
        ).json()
        if not operation.get("done"):
            return Poll(False)
        state = (operation.get("metadata") or {}).get("state", "")
        inlined = ((operation.get("response") or {}).get("inlinedResponses") or {}).get(
            "inlinedResponses"
        ) or []
        created = int(time.time())
        outcomes: list[Outcome] = []
        for n, item in enumerate(inlined):
            key = str((item.get("metadata") or {}).get("key", n))
            if "response" in item:
                outcomes.append(
                    Outcome(
                        key,
                        completion=from_gemini(
                            item["response"], model_name, created, f"gemini-{provider_id}-{key}"
                        ),
                    )
                )
            else:
                error = item.get("error") or {}
                outcomes.append(
                    Outcome(
                        key,
                        error=_error(
                            str(error.get("status", "error")),
                            str(error.get("message", "")),
                            error.get("code"),
                        ),
                    )
                )
        if not inlined and state != "BATCH_STATE_SUCCEEDED":
            # Expired, cancelled or failed as a whole: no line answered (the caller retries them).
            return Poll(True, ())
        return Poll(True, tuple(outcomes))

    def cancel(self, deployment: Deployment, provider_id: str) -> None:
        _check(
            self.http.post(
                f"{self._base(deployment)}/{provider_id}:cancel", headers=self._headers(deployment)
            )
        )

    def find(self, deployment: Deployment, group_id: str) -> str | None:
        listed = _check(
            self.http.get(
                f"{self._base(deployment)}/batches",
                headers=self._headers(deployment),
                params={"pageSize": 100},
            )
        ).json()
        for operation in listed.get("operations") or ():
            metadata = operation.get("metadata") or {}
            if metadata.get("displayName") == group_id:
                return str(operation["name"])
        return None


def protocols(http: httpx.Client) -> Mapping[str, BatchProtocol]:
    return {"openai": OpenAIBatches(http), "anthropic": AnthropicBatches(http), "gemini": GeminiBatches(http)}
