"""Core API routes."""
