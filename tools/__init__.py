"""Never shipped: the benchmark, the fault campaign and the provider stand-ins (not in the wheel or the image)."""
