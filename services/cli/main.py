"""The `loan-engine` console script: one Typer app, one line per command group."""

import logging

import typer

from services.cli import admin, model, pipeline, projections, reprocess, review, rules, tape
from services.cli.stack.commands import app as stack_app

app = typer.Typer(
    help="Loan Engine: loan tapes in, dispositions and reports out.", no_args_is_help=True
)


@app.callback()
def quiet_clients() -> None:
    """Client libraries log connection retries on their own: a command says it in one line."""
    for name in ("aiokafka", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


app.add_typer(stack_app, name="stack")
app.add_typer(pipeline.app)  # `run` and `runs list|show|wait`
reprocess.register()  # `runs reprocess|diff`
app.add_typer(tape.app, name="tape")
app.add_typer(admin.app, name="admin")
app.add_typer(projections.app, name="projections")
app.add_typer(model.app, name="model")
app.add_typer(rules.app, name="rules")
app.add_typer(review.app, name="review")

if __name__ == "__main__":
    app()
