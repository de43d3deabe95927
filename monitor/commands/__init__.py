"""One module per `monitor` subcommand; each has add_arguments(parser).

The one-line help of each is here, not in its module: `monitor --help` lists them all
without importing any, and a command imports only its own module (see cli._LazyCommands).
"""

COMMANDS: dict[str, str] = {
    "check": "validate the configuration; exit 2 if invalid",
    "db": "database maintenance",
    "deliveries": "outbox maintenance",
    "digest": "build and send a digest now",
    "items": "list stored items",
    "match": "explain which watch-lists match a text (exit 0 match, 1 none), or back-test",
    "replay": "re-match stored items against the watch-lists",
    "run": "run the daemon (or one pass with --once)",
    "status": "health of sources, outbox and digests",
}
