from pathlib import Path

from services.cli.stack.secrets import local_secrets


def test_the_stack_makes_its_secrets_once_and_reuses_them(tmp_path: Path) -> None:
    first = local_secrets(tmp_path)
    assert first["GATEWAY_ADMIN_USERNAME"] == "admin"
    assert len(first["GATEWAY_JWT_SECRET"]) >= 32
    assert local_secrets(tmp_path) == first


def test_the_secrets_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    local_secrets(tmp_path)
    assert (tmp_path / "secrets.env").stat().st_mode & 0o777 == 0o600


def test_two_stacks_do_not_share_an_admin_password(tmp_path: Path) -> None:
    one = local_secrets(tmp_path / "a")["GATEWAY_ADMIN_PASSWORD"]
    two = local_secrets(tmp_path / "b")["GATEWAY_ADMIN_PASSWORD"]
    assert one != two
