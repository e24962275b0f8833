"""Type stubs of rotorquant.benchmark (python -m rotorquant.benchmark [--speed])."""
def main(argv: list[str] | None = None) -> int:
    """Runs the seed's 7 tests, or with --speed the Python / C API / seed timings."""
