"""The client side of latency: the server's client (:mod:`~nas.latency.client`), starting a local server
(:mod:`~nas.latency.local_server`), latency tables (:mod:`~nas.latency.table`, the original project's pickles in
:mod:`~nas.latency.original_lut`) and the expected-latency model the search optimises
(:mod:`~nas.latency.expected_latency`). Nothing here imports the search, the models or training."""
