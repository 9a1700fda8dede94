"""`python -m harlab` runs the command line."""

from harlab.cli import main

main()
