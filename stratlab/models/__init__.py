"""Pydantic DTOs only, grouped by domain."""
