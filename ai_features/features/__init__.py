"""One module per feature the product sells; see `ai_features.registry`."""
