"""Data: dataset versions, column profiles, validation (expectations) and drift."""
