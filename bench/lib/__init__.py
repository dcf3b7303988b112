"""What the experiments share: paths, data, metrics, result files, timing and the test stack."""
