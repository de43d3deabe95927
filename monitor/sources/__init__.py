"""Sources: the only code that reads the outside world in."""
