"""The hardware parts, each behind a small interface with real and simulated backends chosen
from the config: `camera`, `controls` (button and LED) and `printer`."""
