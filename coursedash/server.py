"""`coursedash serve`: uvicorn with the limits the API relies on.

h11 rather than httptools, for its cap on a request's head: a 50 MB header is refused
(400) after COURSEDASH_MAX_HEADER_BYTES instead of being held in memory.
"""

from __future__ import annotations

import copy

from coursedash.config import settings


def log_config() -> dict:
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    # The app's own lines (errors with their correlation id) beside uvicorn's.
    config["loggers"]["coursedash"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def serve(host: str, port: int, workers: int = 1) -> None:
    import uvicorn

    uvicorn.run(
        "coursedash.api:app",
        host=host,
        port=port,
        workers=workers,
        http="h11",
        h11_max_incomplete_event_size=settings().max_header_bytes,
        log_config=log_config(),
        log_level="info",
    )
