"""Report downloads, the archive and the files API through HTTP, traversal attempts included."""

import io
from collections.abc import AsyncIterator
from uuid import uuid4

import httpx
import pytest
from conftest import World

from tests.unit.gateway.gateway_events import REPORT_KEYS

pytestmark = pytest.mark.integration

TRAVERSALS = ["../secret", "/etc/passwd", "%2e%2e/secret", "%252e%252e/x", "a/../../b", "a\\..\\b"]


async def test_notebook_outputs_list_the_four_reports(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.get(
        f"/api/runs/{world.run_a1.run_id}/notebook-outputs", headers=world.sales_a
    )
    assert response.status_code == 200
    reports = {item["key"]: item for item in response.json()}
    assert sorted(reports) == sorted(REPORT_KEYS)
    assert reports["purchase_tape"]["name"] == "purchase_tape.csv"
    assert reports["purchase_tape"]["size"] == 100


async def test_each_report_downloads_as_a_csv_attachment(
    client: httpx.AsyncClient, world: World
) -> None:
    for index, key in enumerate(REPORT_KEYS):
        response = await client.get(
            f"/api/runs/{world.run_a1.run_id}/notebook-outputs/{key}/download",
            headers=world.analyst,
        )
        assert response.status_code == 200, key
        assert response.content == f"seller_loan_number\r\n{key}-{index}\r\n".encode()
        assert f'filename="{key}.csv"' in response.headers["content-disposition"]


async def test_an_unknown_report_key_answers_400(client: httpx.AsyncClient, world: World) -> None:
    for key in ("other", "%2e%2e", "purchase_tape.csv"):
        response = await client.get(
            f"/api/runs/{world.run_a1.run_id}/notebook-outputs/{key}/download",
            headers=world.admin,
        )
        assert response.status_code == 400, key


async def test_another_teams_outputs_and_archive_answer_404(
    client: httpx.AsyncClient, world: World
) -> None:
    run_id = world.run_a1.run_id
    for path, params in (
        (f"/api/runs/{run_id}/notebook-outputs", {}),
        (f"/api/runs/{run_id}/notebook-outputs/purchase_tape/download", {}),
        (f"/api/runs/{run_id}/archive", {}),
        (f"/api/runs/{run_id}/archive/download", {"path": "input/tape.csv"}),
    ):
        response = await client.get(path, params=params, headers=world.sales_b)
        assert response.status_code == 404, path


async def test_reports_of_a_run_that_has_not_written_them_answer_404(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.get(
        f"/api/runs/{world.running.run_id}/notebook-outputs/purchase_tape/download",
        headers=world.admin,
    )
    assert response.status_code == 404


async def test_the_archive_lists_inputs_and_outputs_and_downloads_them(
    client: httpx.AsyncClient, world: World
) -> None:
    run_id = world.run_b1.run_id
    listing = await client.get(f"/api/runs/{run_id}/archive", headers=world.sales_b)
    assert listing.status_code == 200
    body = listing.json()
    assert [entry["path"] for entry in body["input"]] == ["input/tape.csv"]
    assert sorted(entry["name"] for entry in body["output"]) == sorted(
        f"{key}.csv" for key in REPORT_KEYS
    )
    download = await client.get(
        f"/api/runs/{run_id}/archive/download",
        params={"path": "input/tape.csv"},
        headers=world.sales_b,
    )
    assert download.status_code == 200
    assert download.content == b"a,b\r\n1,2\r\n"


@pytest.mark.parametrize("path", [*TRAVERSALS, "other/tape.csv", "input", ""])
async def test_archive_paths_outside_the_archive_answer_400(
    client: httpx.AsyncClient, world: World, path: str
) -> None:
    response = await client.get(
        f"/api/runs/{world.run_b1.run_id}/archive/download",
        params={"path": path},
        headers=world.admin,
    )
    assert response.status_code == 400, path


async def test_a_user_uploads_lists_downloads_and_deletes_a_tape(
    client: httpx.AsyncClient, world: World
) -> None:
    folder = f"batch-{uuid4().hex[:6]}"
    made = await client.post("/api/files/mkdir", params={"path": folder}, headers=world.analyst)
    assert made.status_code == 201
    upload = await client.post(
        "/api/files/upload",
        params={"path": folder},
        files={"file": ("tape.csv", b"seller_loan_number\r\nL-1\r\n", "text/csv")},
        headers=world.analyst,
    )
    assert upload.status_code == 201, upload.text
    assert upload.json()["path"] == f"{folder}/tape.csv"
    root = await client.get("/api/files/list", headers=world.analyst)
    assert {"name": folder, "type": "directory"}.items() <= next(
        e for e in root.json()["entries"] if e["name"] == folder
    ).items()
    listing = await client.get("/api/files/list", params={"path": folder}, headers=world.analyst)
    assert [(e["name"], e["size"]) for e in listing.json()["entries"]] == [("tape.csv", 25)]
    download = await client.get(
        "/api/files/download", params={"path": f"{folder}/tape.csv"}, headers=world.analyst
    )
    assert download.content == b"seller_loan_number\r\nL-1\r\n"
    deleted = await client.delete("/api/files", params={"path": folder}, headers=world.analyst)
    assert deleted.status_code == 204
    gone = await client.get("/api/files/list", params={"path": folder}, headers=world.analyst)
    assert gone.status_code == 404


async def test_a_sales_user_works_inside_its_teams_folder_only(
    client: httpx.AsyncClient, world: World
) -> None:
    upload = await client.post(
        "/api/files/upload",
        params={"path": "mine"},
        files={"file": ("a.csv", b"x\r\n1\r\n", "text/csv")},
        headers=world.sales_a,
    )
    assert upload.status_code == 201
    assert upload.json()["path"] == "mine/a.csv"
    admin_view = await client.get(
        "/api/files/list", params={"path": "teams/team-a/mine"}, headers=world.admin
    )
    assert [e["name"] for e in admin_view.json()["entries"]] == ["a.csv"]
    other = await client.get("/api/files/list", params={"path": "mine"}, headers=world.sales_b)
    assert other.status_code == 404
    escape = await client.get(
        "/api/files/download", params={"path": "../team-b/x.csv"}, headers=world.sales_a
    )
    assert escape.status_code == 400


@pytest.mark.parametrize("path", TRAVERSALS)
async def test_file_paths_that_leave_the_root_answer_400(
    client: httpx.AsyncClient, world: World, path: str
) -> None:
    for method, url in (
        ("GET", "/api/files/list"),
        ("GET", "/api/files/download"),
        ("POST", "/api/files/mkdir"),
        ("DELETE", "/api/files"),
    ):
        response = await client.request(method, url, params={"path": path}, headers=world.admin)
        assert response.status_code == 400, (method, url)


async def test_uploads_over_the_size_limit_answer_413(
    client: httpx.AsyncClient, world: World
) -> None:
    big = io.BytesIO(b"x" * (64 * 1024 + 1))
    response = await client.post(
        "/api/files/upload",
        files={"file": ("big.csv", big, "text/csv")},
        headers=world.analyst,
    )
    assert response.status_code == 413
    listing = await client.get("/api/files/list", headers=world.analyst)
    assert "big.csv" not in [e["name"] for e in listing.json()["entries"]]


async def test_an_upload_announced_far_over_the_limit_is_refused_before_it_is_read(
    client: httpx.AsyncClient, world: World
) -> None:
    big = b"x" * (64 * 1024 * 3)
    response = await client.post(
        "/api/files/upload",
        files={"file": ("huge.csv", big, "text/csv")},
        headers={**world.analyst, "X-Request-ID": "upload-1"},
    )
    assert response.status_code == 413
    assert response.json() == {
        "error": "Payload too large",
        "status_code": 413,
        "request_id": "upload-1",
    }


async def test_a_streamed_upload_without_a_length_is_cut_off_at_the_limit(
    client: httpx.AsyncClient, world: World
) -> None:
    boundary = "b0undary"

    async def body() -> AsyncIterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            'filename="stream.csv"\r\nContent-Type: text/csv\r\n\r\n'
        ).encode()
        for _ in range(64):
            yield b"x" * 4096
        yield f"\r\n--{boundary}--\r\n".encode()

    response = await client.post(
        "/api/files/upload",
        content=body(),
        headers={**world.analyst, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 413


@pytest.mark.parametrize("name", ["notes.txt", ".hidden.csv", "tape.csv.exe"])
async def test_uploads_that_are_not_tapes_answer_400(
    client: httpx.AsyncClient, world: World, name: str
) -> None:
    response = await client.post(
        "/api/files/upload",
        files={"file": (name, b"x", "text/plain")},
        headers=world.analyst,
    )
    assert response.status_code == 400, name


async def test_an_upload_named_with_folders_is_stored_under_its_base_name(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.post(
        "/api/files/upload",
        params={"path": "named"},
        files={"file": ("../../etc/up.csv", b"x\r\n", "text/csv")},
        headers=world.analyst,
    )
    assert response.status_code == 201
    assert response.json()["path"] == "named/up.csv"


async def test_deleting_a_missing_file_answers_404_and_the_root_400(
    client: httpx.AsyncClient, world: World
) -> None:
    missing = await client.delete("/api/files", params={"path": "nope.csv"}, headers=world.admin)
    root = await client.delete("/api/files", params={"path": ""}, headers=world.admin)
    assert (missing.status_code, root.status_code) == (404, 400)


@pytest.mark.parametrize("name", ["a%2Fb.csv", "x%252e%252e%252fy.csv", "%2e%2e.csv%2f.csv"])
async def test_an_upload_name_that_decodes_to_a_path_answers_400(
    client: httpx.AsyncClient, world: World, name: str
) -> None:
    # Stored as `folder/a/b.csv`, the tape would sit where a run over the folder never reads.
    response = await client.post(
        "/api/files/upload",
        params={"path": "named"},
        files={"file": (name, b"x\r\n", "text/csv")},
        headers=world.analyst,
    )
    assert response.status_code == 400, name
    assert response.json()["error"] == "Invalid file name"


async def test_a_file_cannot_be_used_as_a_folder_nor_a_folder_replaced_by_a_file(
    client: httpx.AsyncClient, world: World
) -> None:
    folder = f"clash-{uuid4().hex[:6]}"

    async def upload(path: str) -> httpx.Response:
        tape = {"file": ("t.csv", b"seller_loan_number\r\nL-1\r\n", "text/csv")}
        return await client.post(
            "/api/files/upload", params={"path": path}, files=tape, headers=world.analyst
        )

    assert (await upload(folder)).status_code == 201
    into_file = await upload(f"{folder}/t.csv")
    below_file = await client.post(
        "/api/files/mkdir", params={"path": f"{folder}/t.csv/sub"}, headers=world.analyst
    )
    made = await client.post(
        "/api/files/mkdir", params={"path": f"{folder}/sub/t.csv"}, headers=world.analyst
    )
    over_folder = await upload(f"{folder}/sub")
    assert (into_file.status_code, into_file.json()["error"]) == (
        400,
        f"'{folder}/t.csv' is a file, not a folder",
    )
    assert (below_file.status_code, below_file.json()["error"]) == (
        400,
        f"'{folder}/t.csv' is a file, not a folder",
    )
    assert made.status_code == 201
    assert (over_folder.status_code, over_folder.json()["error"]) == (
        400,
        f"'{folder}/sub/t.csv' is a folder",
    )
