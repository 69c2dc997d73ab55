"""The networks: the elastic one-shot supernet (:mod:`~nas.models.supernet`, its layers in
:mod:`~nas.models.elastic`), a child extracted from it as a plain timm network (:mod:`~nas.models.child`) and
export to ONNX or a state dict (:mod:`~nas.models.export`). No latency, search or training here."""
