"""Control characters, refused in every id and address a caller sends (PostgreSQL cannot even store a NUL).

Its own module because the API's guard, its routes and the token check all use it, and the guard imports
the Sunbird facade, which imports the token check.
"""

from __future__ import annotations

import re

CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def has_control(text: str) -> bool:
    return CONTROL.search(text) is not None
