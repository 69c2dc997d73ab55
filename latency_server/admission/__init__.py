"""Admission: whether a request may be measured, decided before anything is queued.

Owns the parsing and limits of request input (:mod:`.validate`), the cost budget (:mod:`.budget`), the
cooldowns after killed or crashed tasks (:mod:`.failures`) and the one-server-per-device lock
(:mod:`.device_lock`).
"""
