"""The model in service, loaded (or first trained) in the background so `/health` answers at once.

Until the model is there, `/health/ready` says `model: loading` (503) and the handler waits for
it; a model that cannot be loaded keeps the service unready and says why.
"""

import asyncio
import logging
from collections.abc import Callable

from services.common.health import NotReady, ReadyCheck
from services.scoring.model import ServedModel

logger = logging.getLogger(__name__)


class ModelSlot:
    """Holds the served model once `fill` has loaded it; `get` waits until then."""

    def __init__(self, model: ServedModel | None = None) -> None:
        self._model = model
        self._filled = asyncio.Event()
        self._error: str | None = None
        if model is not None:
            self._filled.set()

    @property
    def model(self) -> ServedModel | None:
        """The model, or None while it is loading."""
        return self._model

    async def get(self) -> ServedModel:
        """The model, once loaded."""
        await self._filled.wait()
        assert self._model is not None
        return self._model

    async def fill(self, load: Callable[[], ServedModel]) -> ServedModel | None:
        """Run the blocking `load` in a thread and hold its model (None if it failed)."""
        try:
            model = await asyncio.to_thread(load)
        except Exception as error:
            self._error = f"{type(error).__name__}: {error}"
            logger.exception("the scoring model could not be loaded")
            return None
        self._model = model
        self._filled.set()
        logger.info(
            "scoring model loaded",
            extra={"model": model.card.model_name, "version": model.card.model_version},
        )
        return model

    def ready_check(self) -> ReadyCheck:
        """`model` is ready once loaded."""

        async def check() -> None:
            if self._model is None:
                raise NotReady(self._error or "loading")

        return ReadyCheck("model", check)
