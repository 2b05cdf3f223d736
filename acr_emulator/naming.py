"""How metric names and category values are spelled on the wire, and their hostile variants.

Under the ``hostile_names`` fault every metric name and category value carries markup,
quotes, emoji or right-to-left text, so a client's escaping is put to the test. metricIds
never change, so a client can still correlate; internally the emulator keeps the plain
spellings and translates at the edge, in both directions.
"""

from __future__ import annotations

from acr_emulator.catalog import AGENTS

HOSTILE_METRIC_NAMES: dict[str, str] = {
    "CIQGRP01": '<img src=x onerror=alert(1)> "Queue" 🚀',
    "LWCGRP01": "Longest </script><script>alert('wait')</script> Call",
    "AWTGRP01": "Average Wait & <b>Time</b> \u202eevil\u202c",
    "ATTAGT01": "Agent Talk Time {{7*7}} ${7*7} 🗣️",
    "AVLGRP01": "الوكلاء المتاحون <i>Available</i>",
    "CANTOD01": "Calls Answered Today \"'`; DROP TABLE metrics;--",
    "CABGRP01": "Calls Abandoned 😡 <svg onload=alert(2)>",
    "CBDDIR01": "Calls by Direction ⇄ \u200f",
    "CBACOD01": "Calls by Account Code %s %n \\u0000",
    "LWCALL01": "Longest Wait <!-- All --> Groups ⏱️ </div>",
    "HIDDEN01": "Calls Transferred <marquee>Today</marquee>",
}

HOSTILE_VALUES: dict[str, str] = {
    "Sales": "مبيعات <b>",
    "Support": 'Support "Tier 1" & <u>2</u> 🛠️',
    "Billing": "Billing' OR '1'='1",
    "Inbound": "Inbound <script>alert(3)</script>",
    "Outbound": "Outbound 📞 ↗",
    "Internal": "Internal \u202eלנימ\u202c",
    "1001": "<a href=javascript:alert(4)>1001</a>",
    "2040": "2040 👍🏽",
    "3100": '3100 "quoted"',
    "7700": "7700 עברית",
}

_AGENT_NAMES: dict[str, str] = {
    "agarcia": "<img src=x onerror=alert('Ana')> García",
    "bokafor": 'Ben "The Closer" Okafor',
    "cmartin": "Chloé Martin 💁‍♀️",
    "dpatel": "ديف باتيل",
    "eschmidt": "Emma <b>Schmidt</b>",
    "fhaddad": "فريد حداد 🇱🇧",
    "glee": "Grace Lee & Co <i>",
    "htanaka": "田中 ヒロ \u202egnp.exe\u202c",
}

for _agent in AGENTS:
    HOSTILE_VALUES[_agent.display] = f"{_AGENT_NAMES[_agent.agent_id]}({_agent.extension})"

_PLAIN_VALUES = {hostile: plain for plain, hostile in HOSTILE_VALUES.items()}


class Naming:
    """Plain (documented-looking) names, or hostile ones when the fault is on."""

    def __init__(self, *, hostile: bool = False) -> None:
        self.hostile = hostile

    def metric_name(self, metric_id: str, plain: str) -> str:
        return HOSTILE_METRIC_NAMES.get(metric_id, plain) if self.hostile else plain

    def value(self, plain: str) -> str:
        """Internal category value -> wire spelling."""
        return HOSTILE_VALUES.get(plain, plain) if self.hostile else plain

    def plain(self, wire: str) -> str:
        """Wire spelling (either form) -> internal category value."""
        return _PLAIN_VALUES.get(wire, wire)
