"""`python -m vitlib`: the command line of vitlib.cli."""

from vitlib.cli import main

if __name__ == "__main__":
    main()
