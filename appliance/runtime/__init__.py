"""The running appliance: the real devices behind the service loop (`backend`), and the
helpers of `sosie demo` (simulated presses, keyboard)."""
