"""mmdiff models: registered on import."""
