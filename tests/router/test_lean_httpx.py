"""``import router`` brings httpx without httpx's own command-line client (click, rich, pygments)."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
import router
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


def test_import_router_loads_httpx_without_its_cli_and_httpx_still_works() -> None:
    assert run(PROBE) == {"loaded": [], "status": 204, "cli": True}


def test_a_process_that_imported_httpx_first_keeps_it_as_it_was() -> None:
    code = "import httpx\n" + PROBE.replace('{"click", "rich", "pygments"}', '{"rich"}')
    assert run(code)["loaded"] == ["rich"]  # httpx's own import brought its CLI; router changed nothing
