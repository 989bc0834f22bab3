"""`loan-engine review queue | show | assign | start | release | decide`: the credit review desk
from the terminal (SPEC §8), through the gateway's API as the logged-in user.

The gateway is `CLI_API_URL` (default: the stack's gateway port); the user is `--user` or
`CLI_USERNAME`, the password `CLI_PASSWORD` or standard input (`--password-stdin`), never an
argument. With `--json` a command ends with exactly one JSON object on standard output: the API's
answer. An API refusal ends with its status and message on stderr and exit code 1; so does a
gateway that does not answer.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import httpx
import typer

from services.cli import reach
from services.cli.client import CliSettings, load_settings
from services.cli.options import JsonOption
from services.cli.stack.settings import StackSettings

app = typer.Typer(help="Credit review: the queue, a case, assign, start, release, decide.")

UserOption = Annotated[
    str | None, typer.Option("--user", help="Log in as this user (default: CLI_USERNAME).")
]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input.")
]
NotesOption = Annotated[str | None, typer.Option("--notes", help="Why (free text).")]


class Api:
    """A logged-in session with the gateway's API."""

    def __init__(self, settings: CliSettings, user: str | None, password_stdin: bool) -> None:
        port = StackSettings().gateway_http_port
        self.base = (settings.api_url or f"http://127.0.0.1:{port}").rstrip("/")
        self.client = httpx.Client(base_url=self.base, timeout=settings.api_timeout_seconds)
        username = user or settings.username
        if not username:
            reach.fail("say who you are: --user NAME or CLI_USERNAME")
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        elif settings.password is not None:
            password = settings.password.get_secret_value()
        else:
            reach.fail("no password: set CLI_PASSWORD or pass --password-stdin")
        tokens = self.call(
            "POST", "/api/auth/login", data={"username": username, "password": password}
        )
        self.client.headers["Authorization"] = f"Bearer {tokens['access_token']}"

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One API call; its JSON answer, or the command ends with the API's refusal."""
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            reach.fail(
                f"cannot reach the gateway at {self.base} ({reach.reason(error)}); "
                f"{reach.START_THE_STACK}, or set CLI_API_URL"
            )
        if response.status_code >= 400:
            try:
                message = response.json().get("error") or response.text
            except ValueError:
                message = response.text
            reach.fail(f"{response.status_code} {message}")
        if response.status_code == 202:
            typer.secho("published; not yet folded into the read model", err=True)
        return response.json()


def _api(user: str | None, password_stdin: bool) -> Api:
    return Api(load_settings(), user, password_stdin)


def _emit(payload: Any) -> None:
    typer.echo(json.dumps(payload, separators=(",", ":")))


def _case_line(case: dict[str, Any]) -> str:
    loan = case.get("seller_loan_number") or case["loan_id"]
    return (
        f"{case['case_id']}  {case['priority']:<8} {case['priority_score']:>3}  "
        f"{case['status']:<16} {case['sla_state']:<11} due {case['sla_deadline']}  "
        f"score {case['score']:>4}  {loan}"
    )


def _show_case(case: dict[str, Any]) -> None:
    typer.echo(_case_line(case))
    typer.echo(f"  assignee: {case.get('assignee') or '-'}  releases: {case['releases']}")
    score = case.get("score_detail") or {}
    for factor in (score.get("negative_factors") or [])[:5]:
        typer.echo(f"  - {factor.get('description', factor)}")
    for factor in (score.get("positive_factors") or [])[:5]:
        typer.echo(f"  + {factor.get('description', factor)}")
    for decision in case.get("decisions", []):
        typer.echo(
            f"  decision {decision['decision_id']}: {decision['decision_type']} "
            f"({decision['status']})"
        )
    for event in case.get("history", []):
        mark = "" if event.get("applied", True) else f"  (rejected: {event.get('reason')})"
        typer.echo(f"  {event['occurred_at']}  {event['action']:<16} {event['actor_role']}{mark}")


@app.command("queue")
def queue(
    status: Annotated[str | None, typer.Option(help="Only this status (default: open).")] = None,
    analyst: Annotated[str | None, typer.Option(help="Only cases of this user id.")] = None,
    priority: Annotated[str | None, typer.Option(help="critical, high, medium or low.")] = None,
    sort: Annotated[str, typer.Option(help="priority, created or deadline.")] = "priority",
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    user: UserOption = None,
    password_stdin: PasswordStdin = False,
    as_json: JsonOption = False,
) -> None:
    """The review queue in your scope, highest priority first."""
    params = {"status": status, "analyst": analyst, "priority": priority, "sort": sort}
    page = _api(user, password_stdin).call(
        "GET",
        "/api/review/queue",
        params={**{k: v for k, v in params.items() if v is not None}, "limit": limit},
    )
    if as_json:
        _emit(page)
        return
    for case in page["items"]:
        typer.echo(_case_line(case))
    typer.echo(f"{len(page['items'])} of {page['total']} cases")


@app.command("show")
def show(
    case_id: str,
    user: UserOption = None,
    password_stdin: PasswordStdin = False,
    as_json: JsonOption = False,
) -> None:
    """One case: score, factors, decisions and history."""
    case = _api(user, password_stdin).call("GET", f"/api/review/cases/{case_id}")
    if as_json:
        _emit(case)
        return
    _show_case(case)


def _act(
    action: str, case_id: str, body: dict[str, Any], user: str | None, stdin: bool, as_json: bool
) -> None:
    case = _api(user, stdin).call("POST", f"/api/review/cases/{case_id}/{action}", json=body)
    if as_json:
        _emit(case)
        return
    _show_case(case)


@app.command("assign")
def assign(
    case_id: str,
    to: Annotated[
        str | None, typer.Option("--to", help="The analyst's user id (default: you).")
    ] = None,
    notes: NotesOption = None,
    user: UserOption = None,
    password_stdin: PasswordStdin = False,
    as_json: JsonOption = False,
) -> None:
    """Assign a case (to yourself unless --to names another analyst)."""
    body = {key: value for key, value in (("assignee", to), ("notes", notes)) if value}
    _act("assign", case_id, body, user, password_stdin, as_json)


@app.command("start")
def start(
    case_id: str,
    notes: NotesOption = None,
    user: UserOption = None,
    password_stdin: PasswordStdin = False,
    as_json: JsonOption = False,
) -> None:
    """Start working on a case assigned to you."""
    _act("start", case_id, {"notes": notes} if notes else {}, user, password_stdin, as_json)


@app.command("release")
def release(
    case_id: str,
    notes: NotesOption = None,
    user: UserOption = None,
    password_stdin: PasswordStdin = False,
    as_json: JsonOption = False,
) -> None:
    """Send a case back to the queue (one priority step lower)."""
    _act("release", case_id, {"notes": notes} if notes else {}, user, password_stdin, as_json)


def _condition(text: str) -> dict[str, str]:
    kind, sep, description = text.partition(":")
    if not sep or not description.strip():
        raise typer.BadParameter("a condition is TYPE:DESCRIPTION, e.g. documentation:W-2 2025")
    return {"condition_type": kind.strip(), "description": description.strip()}


@app.command("decide")
def decide(
    case_id: str,
    outcome: Annotated[
        str, typer.Option("--outcome", help="approve, approve_with_conditions or decline.")
    ],
    terms: Annotated[str | None, typer.Option(help="The approval's terms.")] = None,
    condition: Annotated[
        list[str] | None,
        typer.Option(help="TYPE:DESCRIPTION (documentation, collateral, guarantor, ...); repeat."),
    ] = None,
    reasoning: Annotated[str | None, typer.Option(help="Why decline.")] = None,
    justification: Annotated[
        str | None, typer.Option(help="Why go against the model (50 characters or more).")
    ] = None,
    user: UserOption = None,
    password_stdin: PasswordStdin = False,
    as_json: JsonOption = False,
) -> None:
    """Decide a case in progress; against the model it waits for a second person's approval."""
    body: dict[str, Any] = {
        "outcome": outcome,
        "terms": terms,
        "reasoning": reasoning,
        "justification": justification,
        "conditions": [_condition(text) for text in condition or []],
    }
    body = {key: value for key, value in body.items() if value not in (None, [])}
    _act("decision", case_id, body, user, password_stdin, as_json)
