"""The one console harlab talks through (stderr, so stdout stays clean for results).

Library modules never print: they log notices to their module's logger (`logging.getLogger(__name__)`, under
"harlab") — warnings about the user's data or results, info for plain progress notes. The command line calls
`show_notices` to print them here.
"""

import logging

from rich.console import Console

# No file given: rich looks up sys.stderr at each print, so a swapped stderr (pytest, typer's CliRunner) gets it.
console = Console(stderr=True, highlight=False, soft_wrap=True)


def say(message: str) -> None:
    """Print a one-line notice for the user."""
    console.print(message, markup=False)


class _Notices(logging.Handler):
    """Prints each record's message through `say` (the console's stream is looked up as it prints)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            say(record.getMessage())
        except Exception:  # logging's rule: a handler never raises
            self.handleError(record)


def show_notices() -> None:
    """Print the "harlab" logger's notices (INFO and above) through `say`; calling it again adds nothing."""
    logger = logging.getLogger("harlab")
    if not any(isinstance(handler, _Notices) for handler in logger.handlers):
        logger.addHandler(_Notices(logging.INFO))
    logger.setLevel(logging.INFO)
