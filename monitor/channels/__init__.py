"""Channels: the only code that talks SMTP or HTTP out (and writes Maildirs)."""
