"""One module per `monitor` subcommand; each has add_parser(subparsers)."""
