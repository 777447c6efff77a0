"""The running appliance: the pure state machine (`machine`); the service loop that turns its
actions into I/O (`service`, with `timers`, `worker`, `jobs`); the parts behind it, assembled
from the settings (`appliance`); one visit's lookup (`lookup`); the control socket and its
commands (`control_socket`, `control`); the presence trigger; systemd notifications and
watchdog; `sosie doctor` (`doctor`, `poweroff`); `sosie demo` (`demo`). The composition root
is `installation.assemble`. The benches' simulation lives in bench/simulated.py. See
docs/architecture.md."""
