"""The learned artefact model: its network, the processes that make training fakes, training,
evaluation, ONNX export and the registry of shipped weights. No Django. Scoring needs only numpy, Pillow
and ONNX Runtime (`patches`, `runtime`, `registry.load`); torch is for training, evaluation and export."""
