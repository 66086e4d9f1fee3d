"""kith-example-plugin: a complete, small Kith plugin to copy from.

It keeps a welcome list: every new contact lands on it (an event subscriber), agents read it
over HTTP (``GET /api/example/welcomes``) and mark contacts welcomed
(``POST /api/example/welcomes/{contact_id}/done``), and ``kith example welcomes`` prints it.
"""

__version__ = "0.1.0"
