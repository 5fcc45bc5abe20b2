"""Portable models: a saved model as an ONNX graph with its state as explicit inputs and
outputs, as Keras 3 files (stateful, and one step with explicit state), and Keras files
read back into a model directory. Each format's packages are an extra (``onnx``, ``keras``),
imported only when used."""
