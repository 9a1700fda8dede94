"""The one console harlab talks through (stderr, so stdout stays clean for results)."""

from rich.console import Console

console = Console(stderr=True, highlight=False, soft_wrap=True)


def say(message: str) -> None:
    """Print a one-line notice for the user."""
    console.print(message, markup=False)
