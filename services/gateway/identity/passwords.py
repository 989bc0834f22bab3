"""Argon2 password hashes (pwdlib), computed off the event loop."""

import asyncio
from functools import cache

from pwdlib import PasswordHash
from pwdlib.exceptions import PwdlibError

_HASHER = PasswordHash.recommended()


def hash_password(password: str) -> str:
    """An Argon2 hash of `password`."""
    return _HASHER.hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    """Whether `password` matches `password_hash`."""
    try:
        return _HASHER.verify(password, password_hash)
    except (PwdlibError, ValueError):
        return False


@cache
def _dummy_hash() -> str:
    return hash_password("not-a-real-password")


async def hash_password_async(password: str) -> str:
    """`hash_password` in a worker thread (Argon2 takes tens of milliseconds)."""
    return await asyncio.to_thread(hash_password, password)


async def verify_password_async(password: str, password_hash: str | None) -> bool:
    """Verify in a worker thread; an unknown user costs a verification too (no timing oracle)."""
    target = password_hash if password_hash is not None else _dummy_hash()
    matched = await asyncio.to_thread(verify_password, password, target)
    return matched and password_hash is not None
