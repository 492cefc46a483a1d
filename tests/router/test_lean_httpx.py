"""The router brings httpx without httpx's own command-line client (click, rich, pygments), and
``import router`` alone loads the clients, not the router's machinery."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
import router
policy = {"models": {"m": {"provider": "openai"}}, "routes": {"auto": {"candidates": ["m"]}}}
router.OpenAI(api_key="sk-test", policy=policy)
loaded = sorted({name.split(".")[0] for name in sys.modules} & {"click", "rich", "pygments"})
import httpx
with httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(204))) as client:
    status = client.get("http://example.invalid/").status_code
import httpx._main  # the httpx command still imports when asked for
print(json.dumps({"loaded": loaded, "status": status, "cli": callable(httpx._main.main)}))
"""


def run(code: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_a_router_client_loads_httpx_without_its_cli_and_httpx_still_works() -> None:
    assert run(PROBE) == {"loaded": [], "status": 204, "cli": True}


def test_a_process_that_imported_httpx_first_keeps_it_as_it_was() -> None:
    code = "import httpx\n" + PROBE.replace('{"click", "rich", "pygments"}', '{"rich"}')
    assert run(code)["loaded"] == ["rich"]  # httpx's own import brought its CLI; router changed nothing


def test_import_router_alone_loads_the_clients_and_not_the_machinery() -> None:
    code = """
import json, sys
import router
machinery = ["router._client", "router._engine", "policies.plan", "router.ledger", "providers.base", "numpy"]
before = [name for name in machinery if name in sys.modules]
policy = {"models": {"m": {"provider": "openai"}}, "routes": {"auto": {"candidates": ["m"]}}}
router.AsyncOpenAI(api_key="sk-test", policy=policy)
after = [name for name in machinery if name in sys.modules]
print(json.dumps({"loaded": before, "client": after}))
"""
    # numpy stays out even then: only a policy with an adequacy file needs it
    assert run(code) == {
        "loaded": [],
        "client": ["router._client", "router._engine", "policies.plan", "router.ledger", "providers.base"],
    }


def test_the_first_read_of_an_exported_name_loads_it_lean() -> None:
    code = """
import json, sys
import router
error = router.BudgetExceededError
loaded = sorted({name.split(".")[0] for name in sys.modules} & {"click", "rich", "pygments"})
print(json.dumps({"loaded": loaded, "module": error.__module__, "httpx": "httpx" in sys.modules}))
"""
    assert run(code) == {"loaded": [], "module": "router._exceptions", "httpx": True}


def test_threads_reading_names_and_building_clients_at_once_all_get_whole_modules() -> None:
    # A module another thread is still importing sits half made in sys.modules: each thread must
    # wait for it (importlib's module locks), never read it there.
    code = """
import json, threading
import router
policy = {"models": {"m": {"provider": "openai"}}, "routes": {"auto": {"candidates": ["m"]}}}
names = ["BudgetExceededError", "RoutingRecord", "TransportLimits", "LedgerError"]
start, errors, found = threading.Barrier(8), [], []
def work(i):
    start.wait()
    try:
        found.append(getattr(router, names[i % 4]).__name__)
        (router.OpenAI if i % 2 else router.AsyncOpenAI)(api_key="sk-test", policy=policy)
    except Exception as exc:
        errors.append(repr(exc))
threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps({"errors": errors, "found": sorted(set(found))}))
"""
    assert run(code) == {
        "errors": [],
        "found": sorted(["BudgetExceededError", "RoutingRecord", "TransportLimits", "LedgerError"]),
    }
