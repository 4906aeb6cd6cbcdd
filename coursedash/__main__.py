"""`python -m coursedash`: the same command line as `coursedash`."""

from coursedash.cli import main

main()
