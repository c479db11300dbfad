"""Export grutext models to ONNX (`exporter.export_model`, the `grutext export` command); the graphs
are built node by node in `graph`, from the arrays `nets` takes out of the torch modules."""
