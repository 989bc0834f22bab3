"""Options shared by the command groups: one declaration each, the same help everywhere."""

from typing import Annotated

import typer

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON object as the last line of stdout.")
]
WaitOption = Annotated[
    float | None,
    typer.Option(
        "--wait", min=0, help="Follow the run up to this many seconds and print its result."
    ),
]
PdateOption = Annotated[str | None, typer.Option("--pdate", help="Purchase date (YYYY-MM-DD).")]
IrrTargetOption = Annotated[
    str | None, typer.Option("--irr-target", help="IRR target, > 0 and < 100 (default 8.05).")
]
SalesTeamOption = Annotated[
    str | None, typer.Option("--sales-team-id", help="The sales team the run belongs to.")
]
