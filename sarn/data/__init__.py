"""Raw click logs in, model-ready sample arrays out. Knows nothing about models."""
