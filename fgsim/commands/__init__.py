"""CLI subcommands. Each module exposes ``register(subparsers)`` and ``run(args) -> int``.

``COMMANDS`` lists the module names in the order ``--help`` shows them; a module is imported only when
its command runs (or for ``--help``), so heavy optional dependencies stay out of other commands.
"""

COMMANDS: tuple[str, ...] = (
    "inspect",
    "synth",
    "predict",
    "sweep",
    "calibrate",
    "validate",
    "capture",
)
