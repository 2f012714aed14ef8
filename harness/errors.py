"""The one exception type for mistakes a user can fix: the CLI prints it as one line and exits 2."""


class UserError(Exception):
    """A problem with the user's input (file, field, option); the message says where and what to do."""
