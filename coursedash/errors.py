"""A mistake the user can fix, told in one plain line by the command line."""


class UserError(Exception):
    """Printed as `coursedash: <message>` with exit status 2, never as a traceback."""
