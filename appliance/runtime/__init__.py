"""The running appliance: the pure state machine (`machine`), the service loop that turns its
actions into I/O (`service`), one visit's lookup (`lookup`), the devices behind the loop
(`backend`), the control socket, the presence trigger, systemd notifications, `sosie doctor`
and the helpers of `sosie demo` (simulated presses, keyboard)."""
