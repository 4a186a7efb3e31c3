"""``python -m zoo_core`` runs the ``zoo`` command (torchrun launches it this way)."""

from zoo_core.cli import main

if __name__ == "__main__":
    main()
