"""The latency server: measures block and network latencies on this device and serves them over REST.

Wings, each importing only the ones below it: ``api`` (HTTP) -> ``service`` (the facade the routes call) ->
``verdicts`` (whole-network figures and their bounds) -> ``tables`` (lookup tables, their builds and fits) ->
``admission`` (what may be measured: input checks, budgets, cooldowns, the device lock) -> ``store`` (the
database) -> ``worker`` (the measurement process and what travels to it) -> ``config``/``errors``.
"""
