"""`python -m mrisr` (also what `torchrun -m mrisr` runs)."""

from mrisr.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
