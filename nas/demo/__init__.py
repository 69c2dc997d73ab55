"""``nas demo``: the main job end to end on the bundled data with a local latency server (:mod:`nas.demo.run`),
the server started through its command line (:mod:`nas.latency.local_server`) and the report
(:mod:`nas.demo.report`)."""

from nas.demo.run import run_demo
from nas.demo.state import DemoConfig, DemoError

__all__ = ["DemoConfig", "DemoError", "run_demo"]
