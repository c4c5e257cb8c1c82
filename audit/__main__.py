"""``python -m audit`` runs the hostaudit command line."""

from audit.cli.main import entry

entry()
