"""Command-line adapters of spec/ADAPTER.md (python -m cuframes.adapters.pub / .sub)."""
