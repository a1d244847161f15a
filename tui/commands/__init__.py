"""One module per `lcc` command; each exposes `run(args) -> exit code`."""
