"""Admission: whether a request may be measured, decided before anything is queued, and the gate it then goes through.

Owns the parsing and limits of request input (:mod:`.validate`), the cost budget (:mod:`.budget`), the
cooldowns after killed or crashed tasks (:mod:`.failures`), the one-server-per-device lock
(:mod:`.device_lock`), and the :class:`~.measurer.Measurer` through which tables and verdicts get work
admitted, queued, run on the worker and stored.
"""
