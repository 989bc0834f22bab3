"""The committed JSON Schemas and AsyncAPI document, generated from the contracts.

`python -m contracts.specs` rewrites them; a unit test fails when the committed files are stale.
"""

import json
from pathlib import Path

from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from contracts.registry import EVENTS_BY_TOPIC
from contracts.topics import ALL_TOPICS, DEFAULT_PREFIX

SCHEMA_DIR = Path(__file__).parent / "schemas"
ASYNCAPI_PATH = Path(__file__).parent / "asyncapi.json"


def _dump(document: object) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def json_schemas() -> dict[str, str]:
    """File name to JSON Schema text, one file per event contract."""
    files: dict[str, str] = {}
    for topic, models in EVENTS_BY_TOPIC.items():
        for model in models:
            schema = model.model_json_schema()
            schema["$id"] = f"loan-engine/{topic}/{model.__name__}"
            files[f"{topic}.{model.__name__}.json"] = _dump(schema)
    return files


def asyncapi_document() -> str:
    """The AsyncAPI document of every topic and the messages it carries."""
    broker = KafkaBroker()
    by_name = {topic.name: topic for topic in ALL_TOPICS}
    for name, models in EVENTS_BY_TOPIC.items():
        topic = by_name[name]
        for model in models:
            broker.publisher(
                topic.physical(DEFAULT_PREFIX),
                title=f"{name}:{model.__name__}",
                description=f"{topic.description} Key: {topic.key}.",
                schema=model,
            )
    spec = AsyncAPI(broker, title="Loan Engine", version="1.0.0", schema_version="3.0.0")
    return _dump(json.loads(spec.to_specification().to_json()))


def expected_files() -> dict[Path, str]:
    """Every generated path with its expected content."""
    files = {SCHEMA_DIR / name: text for name, text in json_schemas().items()}
    files[ASYNCAPI_PATH] = asyncapi_document()
    return files


def write() -> None:
    """Regenerate the committed specification files."""
    SCHEMA_DIR.mkdir(exist_ok=True)
    for stale in SCHEMA_DIR.glob("*.json"):
        stale.unlink()
    for path, text in expected_files().items():
        path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    write()
