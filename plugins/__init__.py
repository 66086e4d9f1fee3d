"""Kith's built-in integration plugins; each is a plugin like any third-party one."""
