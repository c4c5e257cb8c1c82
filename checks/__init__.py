"""Built-in check plugins. Each module is a pluggy plugin with a ``hostaudit_checks`` hook."""
