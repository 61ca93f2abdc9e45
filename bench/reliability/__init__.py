"""``robomr bench reliability``: a table of bad inputs and faults, and a fixed-seed fuzzing
budget, run against the ``robomr`` commands (see ``bench/bench_reliability.py``)."""
