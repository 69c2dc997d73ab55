"""The measurement worker: the child process that imports torch and times models, and its server-side handle.

Owns the supervisor the server talks to (:mod:`.supervisor`), the process itself (:mod:`.process`), the loop
that runs tasks in the child (:mod:`.measuring_loop`), the timing code and backends, the plain values that
cross the pipe (:mod:`.tasks`, :mod:`.stats`), the device fingerprint, and the queue and jobs that feed it.
"""
