"""``robomr demo``: the whole robot graph on a built-in scenario, measured and summarised."""
