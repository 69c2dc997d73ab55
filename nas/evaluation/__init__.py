"""How good a searched network is without fine-tuning: a supernet child's held-out accuracy
(:mod:`~nas.evaluation.child_accuracy`), random networks drawn inside a latency band
(:mod:`~nas.evaluation.band_sampling`) and the searched network ranked among them
(:mod:`~nas.evaluation.versus_random`)."""
