"""`python -m newsetl ...` is the `newsetl` command."""

from newsetl.cli import entry

entry()
