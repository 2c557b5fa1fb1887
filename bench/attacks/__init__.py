"""The pieces of ``python -m bench.compare_attacks``: the attacks compared and the shims that
make the old libraries import (registry, shims), one attack per fresh process (worker), the
gradient floor and profile (floor), scoring the outputs and explaining their differences
(scoring), and the Markdown section (report)."""
