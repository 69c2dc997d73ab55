"""Sub-commands of the ``nas`` CLI, one module each; a module exposes ``register(subparsers)``."""
