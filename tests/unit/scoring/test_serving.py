"""The model slot: the handler waits for the model; readiness says loading, or why it failed."""

import asyncio

import pytest

from services.common.health import NotReady
from services.scoring.model import ServedModel
from services.scoring.serving import ModelSlot


async def test_get_waits_until_the_model_is_loaded(served_model: ServedModel) -> None:
    slot = ModelSlot()
    waiting = asyncio.create_task(slot.get())
    await asyncio.sleep(0)
    assert not waiting.done()
    with pytest.raises(NotReady, match="loading"):
        await slot.ready_check().check()

    assert await slot.fill(lambda: served_model) is served_model

    assert await asyncio.wait_for(waiting, 5) is served_model
    await slot.ready_check().check()


async def test_a_model_that_cannot_load_keeps_the_service_unready_and_says_why() -> None:
    def broken() -> ServedModel:
        raise RuntimeError("registry unreachable")

    slot = ModelSlot()
    assert await slot.fill(broken) is None
    assert slot.model is None
    with pytest.raises(NotReady, match="registry unreachable"):
        await slot.ready_check().check()


async def test_a_slot_given_a_model_is_ready_at_once(served_model: ServedModel) -> None:
    slot = ModelSlot(served_model)
    assert await slot.get() is served_model
    await slot.ready_check().check()
