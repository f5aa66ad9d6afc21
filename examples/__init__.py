"""Examples: run configs, a user universe and a user strategy (importable as examples.*)."""
