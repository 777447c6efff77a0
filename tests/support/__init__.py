"""Tools the tests (and bench/map.py) share that are not part of the appliance."""
