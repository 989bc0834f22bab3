from contracts.specs import expected_files


def test_committed_schemas_and_asyncapi_are_current() -> None:
    stale = [
        str(path)
        for path, text in expected_files().items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]
    assert not stale, f"run `python -m contracts.specs` to regenerate: {stale}"


def test_no_schema_file_is_left_over_from_a_removed_contract() -> None:
    expected = {path.name for path in expected_files()}
    committed = {path.name for path in next(iter(expected_files())).parent.glob("*.json")}
    assert committed <= expected
