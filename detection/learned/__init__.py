"""The learned artefact model: its network, the processes that make training fakes, training,
evaluation and the registry of shipped weights. Plain torch / numpy / Pillow; no Django."""
