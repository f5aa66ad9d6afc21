"""Worked examples of user strategies (see README, "Bring your own strategy")."""
