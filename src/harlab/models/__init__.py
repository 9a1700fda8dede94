"""Network architectures, one per module, built by name through the registry."""
