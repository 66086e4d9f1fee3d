"""The ``kith`` command."""
