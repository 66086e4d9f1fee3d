"""The privacy module's plugin object: the hooks through which it joins Kith.

Registered through the ``kith`` entry-point group (``privacy = "kith.privacy.plugin"``), exactly
like a third-party plugin. Its hooks are added by the privacy work.
"""
