"""Asterisk for the telephony plugin: its Manager Interface (AMI) as a connected call provider.

:class:`AsteriskProvider` keeps a login to the AMI (plain or MD5 challenge), reconnects with
backoff, pings to notice a silent server and places click-to-call calls through Local channels;
:class:`AmiTranslator` turns the event stream into the plugin's call events. docs/telephony-
asterisk.md tells the PBX side.
"""

from __future__ import annotations

from kith.plugins.telephony.asterisk.provider import AsteriskProvider, AsteriskStatus
from kith.plugins.telephony.asterisk.settings import AsteriskSettings
from kith.plugins.telephony.asterisk.translator import AmiTranslator

__all__ = ["AmiTranslator", "AsteriskProvider", "AsteriskSettings", "AsteriskStatus"]
