"""Read models built from events, one module per model."""
