"""The workbench's API contract and its static mount in the gateway."""

import json
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.gateway.app import WEB_CSP, create_app, mount_workbench

PROJECT = Path(__file__).resolve().parents[3]
COMMITTED = PROJECT / "web" / "openapi.json"


def current_openapi() -> str:
    return json.dumps(create_app().openapi(), indent=2, sort_keys=True) + "\n"


def test_the_committed_openapi_json_the_web_client_is_generated_from_matches_the_gateway() -> None:
    # Regenerate with: .venv/bin/python -m tests.unit.gateway.test_workbench
    assert COMMITTED.read_text() == current_openapi(), (
        "web/openapi.json is stale: run `.venv/bin/python -m tests.unit.gateway.test_workbench`"
        " and rebuild the web app (npm run build) so its client follows the API"
    )


def test_the_root_says_how_to_build_the_workbench_when_it_is_not_built(tmp_path: Path) -> None:
    app = FastAPI()
    mount_workbench(app, tmp_path)
    answer = TestClient(app).get("/")
    assert answer.status_code == 200
    assert "npm run build" in answer.text
    assert answer.headers["content-security-policy"] == WEB_CSP


def test_the_root_serves_the_built_workbench_and_its_assets(tmp_path: Path) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><div id=root></div>")
    (tmp_path / "assets" / "app.js").write_text("console.log(1)")
    app = FastAPI()
    mount_workbench(app, tmp_path)
    client = TestClient(app)
    assert client.get("/").text == "<!doctype html><div id=root></div>"
    assert client.get("/assets/app.js").text == "console.log(1)"
    assert client.get("/assets/missing.js").status_code == 404


if __name__ == "__main__":
    COMMITTED.write_text(current_openapi())
